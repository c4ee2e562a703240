import { parseArgs } from 'node:util';
import { callApi } from '../api-client.js';
import { type Command, type Io, UsageError } from '../command.js';

interface KeyView {
  id: string;
  name: string;
  owner: string;
  project: string | null;
  role: string;
  models: string[] | null;
  hint: string;
  expiresAt: string | null;
  revokedAt: string | null;
  createdBy?: string | null;
  rotatedBy?: string | null;
  status?: string;
  suspendedAt?: string | null;
  suspension?: { by: string; reason: string; decisionId?: string } | null;
  key?: string;
}

function printKey(io: Io, k: KeyView): void {
  io.out(
    `${k.id}  ${k.name}  owner=${k.owner}  project=${k.project ?? '-'}  role=${k.role}  models=${k.models?.join(',') ?? 'any'}  ${k.hint}  ${k.status ?? ''}`.trimEnd(),
  );
  if (k.expiresAt) io.out(`  expires ${k.expiresAt}`);
  if (k.revokedAt) io.out(`  revoked ${k.revokedAt}`);
  if (k.suspendedAt) {
    const s = k.suspension;
    io.out(
      `  suspended ${k.suspendedAt}${s?.decisionId ? ` by decision ${s.decisionId}` : ''} (${s?.by ?? 'unknown'}: ${s?.reason ?? ''}); resume: flowloom keys resume ${k.id}`,
    );
  }
  // Lineage: second-person approval of policies refuses keys created through the author's key.
  io.out(
    `  created by ${k.createdBy ?? '- (bootstrap admin key)'}${k.rotatedBy ? `, rotated by ${k.rotatedBy}` : ''}`,
  );
}

function printSecret(io: Io, k: KeyView): void {
  io.out(`\n  ${k.key}\n\n  This secret is shown only once. Store it now.`);
}

const HELP = `Usage: flowloom keys <create|list|show|revoke|rotate|resume> [options]

Manages virtual API keys through a running FlowLoom (FLOWLOOM_URL, FLOWLOOM_API_KEY = an admin key).

  flowloom keys create --name NAME [--owner O] [--project P] [--team T] [--models m1,m2*] [--expires-in-days N] [--admin] [--json]
  flowloom keys list [--project P] [--all] [--json]
  flowloom keys show ID [--json]
  flowloom keys revoke ID
  flowloom keys rotate ID [--grace-seconds N] [--json]
  flowloom keys resume ID [--json]

\`keys list\` leaves revoked keys out unless --all is given; expired ones are listed with their status.
A created or rotated key's secret is printed once; FlowLoom keeps only its hash.
Rotation issues a replacement and lets the old key work for the grace period (default 3600 s).
A key suspended by a policy (suspend_key) is refused (403, naming the decision) until an admin
resumes it with \`flowloom keys resume ID\`: it works again at once, and the audit trail records
who resumed it (key.changed, action "resumed"). \`keys show ID\` names the decision that suspended
it. Revocation is for good.`;

export const keysCommand: Command = {
  name: 'keys',
  summary: 'Create, list, revoke, rotate and resume virtual API keys',
  help: HELP,
  async run(args, io) {
    const [sub, ...rest] = args;
    const { values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      strict: true,
      options: {
        name: { type: 'string' },
        owner: { type: 'string' },
        project: { type: 'string' },
        team: { type: 'string' },
        models: { type: 'string' },
        'expires-in-days': { type: 'string' },
        admin: { type: 'boolean' },
        all: { type: 'boolean' },
        json: { type: 'boolean' },
        'grace-seconds': { type: 'string' },
      },
    });
    const show = (k: KeyView): void => (values.json ? io.out(JSON.stringify(k, null, 2)) : printKey(io, k));
    const id = (): string => {
      const value = positionals[0];
      if (!value) throw new UsageError(`flowloom keys ${sub} needs a key id (see flowloom keys list)`);
      return encodeURIComponent(value);
    };
    switch (sub) {
      case 'create': {
        if (!values.name) throw new UsageError('flowloom keys create needs --name');
        const days = values['expires-in-days'];
        if (days !== undefined && !(Number(days) > 0))
          throw new UsageError('--expires-in-days must be a positive number');
        const created = (await callApi(io, 'POST', '/api/v1/keys', {
          name: values.name,
          ...(values.owner ? { owner: values.owner } : {}),
          ...(values.project ? { project: values.project } : {}),
          ...(values.team ? { team: values.team } : {}),
          ...(values.models
            ? {
                models: values.models
                  .split(',')
                  .map((m) => m.trim())
                  .filter(Boolean),
              }
            : {}),
          ...(days ? { expiresInDays: Number(days) } : {}),
          ...(values.admin ? { role: 'admin' } : {}),
        })) as KeyView;
        show(created);
        if (!values.json) printSecret(io, created);
        return 0;
      }
      case 'list': {
        const query = new URLSearchParams();
        if (values.project) query.set('project', values.project);
        if (values.all) query.set('includeRevoked', 'true');
        const { data } = (await callApi(io, 'GET', `/api/v1/keys?${query}`)) as { data: KeyView[] };
        if (values.json) io.out(JSON.stringify(data, null, 2));
        else if (data.length === 0) io.out('No keys.');
        else for (const k of data) printKey(io, k);
        return 0;
      }
      case 'show':
        show((await callApi(io, 'GET', `/api/v1/keys/${id()}`)) as KeyView);
        return 0;
      case 'revoke':
        show((await callApi(io, 'POST', `/api/v1/keys/${id()}/revoke`, {})) as KeyView);
        return 0;
      case 'resume':
        show((await callApi(io, 'POST', `/api/v1/keys/${id()}/resume`, {})) as KeyView);
        return 0;
      case 'rotate': {
        const grace = values['grace-seconds'];
        if (grace !== undefined && !/^\d+$/.test(grace))
          throw new UsageError('--grace-seconds must be a whole number');
        const rotated = (await callApi(
          io,
          'POST',
          `/api/v1/keys/${id()}/rotate`,
          grace ? { gracePeriodSeconds: Number(grace) } : {},
        )) as KeyView;
        show(rotated);
        if (!values.json) printSecret(io, rotated);
        return 0;
      }
      default:
        throw new UsageError(sub ? `unknown keys command "${sub}"` : 'flowloom keys needs a subcommand');
    }
  },
};
