import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { formatDiagnostics, loadPolicy } from '@flowloom/policy-engine';
import { callApi } from '../api-client.js';
import { type Command, type Io, UsageError } from '../command.js';

const HELP = `Usage: flowloom policy <command> [options]

Policies decide, inline in the gateway, what happens to each AI request: allow, block, throttle,
reroute, redact, cap max_tokens, alert, suspend the key or stop the job. Versions are immutable and
content-hashed; rolling one out goes shadow -> canary -> enforce, and canary and enforce need the
approval of someone other than the version's author. All commands but validate talk to a running
FlowLoom (FLOWLOOM_URL, FLOWLOOM_API_KEY = an admin key; the key's owner is who you are).

  flowloom policy validate FILE [--json]
      Checks a policy file offline: YAML/JSON, fields, CEL conditions, actions. Exit 1 when invalid,
      each problem as file:line:column: path: message.

  flowloom policy push FILE [-m MESSAGE] [--job-policy] [--json]
      Stores FILE as a new version (an identical document is the same version). An invalid policy is
      refused with the same pointed messages and never becomes active. Pushing does not deploy.
      --job-policy: a version to bind to a job's key (flowloom run --policy VERSION, or a key's
      "policy"): it may only add restrictions (no reroute), so it needs no approval and is never deployed.

  flowloom policy diff NAME [--from VERSION] [--to VERSION]
  flowloom policy diff FILE
      What changed between two versions (default: the latest and the one before it), or between FILE
      and the version that is enforced now.

  flowloom policy promote NAME VERSION --mode shadow|canary|enforce [--percent N] [--by job|key]
      shadow: evaluated and recorded, changes nothing (applies at once). canary: enforced for N% of jobs
      (or keys), picked by a stable hash. enforce: for everyone. canary and enforce wait for approval.

  flowloom policy approve PROMOTION_ID
      Approves a pending promotion (not if you wrote the version); it applies at once.

  flowloom policy rollback NAME [--to VERSION]
      Puts back the previous deployment of NAME, or enforces VERSION alone. No approval; recorded.
      VERSION must be one NAME enforced before; a version never enforced goes through promote.

  flowloom policy replay [NAME] --version VERSION [--baseline VERSION] [--since 24h] [--limit N] [--json]
      Evaluates VERSION against recorded traffic (decisions since 24h, 30m, 7d or an ISO date) and
      prints how decisions would change against the baseline (default: the enforced version).
      NAME may be left out: the version says which policy it belongs to. Replays the newest N
      decisions (--limit, default 10,000) and says how many it left out, and how many decisions lack
      inputs VERSION reads (recorded before any policy read them): for those the comparison is blind.

  flowloom policy list [--json]
  flowloom policy show NAME [VERSION] [--json]
      Policies with what is enforced; one policy's versions, deployments and promotions, or a
      version's source.

  flowloom policy decision DECISION_ID [--json]
      One decision (the x-flowloom-decision header): every rule, what it read, what happened and why.

VERSION is a version id or a prefix of at least 7 characters.`;

const short = (v: unknown): string => (typeof v === 'string' ? v.slice(0, 12) : '-');

interface DeploymentView {
  revision: number;
  stable: string | null;
  candidate: { version: string; mode: string; percent?: number; by?: string } | null;
  reason: string;
  actor: string;
  at: string;
}

function describeDeployment(d: DeploymentView | null): string {
  if (!d) return 'not deployed';
  const parts = [`enforce ${short(d.stable)}`];
  if (d.candidate) {
    const share = d.candidate.mode === 'canary' ? ` ${d.candidate.percent}% by ${d.candidate.by}` : '';
    parts.push(`${d.candidate.mode}${share} ${short(d.candidate.version)}`);
  }
  return `${parts.join(', ')} (revision ${d.revision}, ${d.reason} by ${d.actor})`;
}

function readSource(file: string): string {
  // A missing file is not a mistake in the command line: no usage text, just what to check.
  if (!existsSync(file))
    throw new Error(`no such file: ${file} (give the path of a policy document, YAML or JSON)`);
  return readFileSync(file, 'utf8');
}

const enc = encodeURIComponent;

export const policyCommand: Command = {
  name: 'policy',
  summary: 'Validate, push, diff, promote, approve, roll back and replay policies',
  help: HELP,
  async run(args, io) {
    const [sub, ...rest] = args;
    const { values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      strict: true,
      options: {
        message: { type: 'string', short: 'm' },
        'job-policy': { type: 'boolean' },
        json: { type: 'boolean' },
        from: { type: 'string' },
        to: { type: 'string' },
        mode: { type: 'string' },
        percent: { type: 'string' },
        by: { type: 'string' },
        version: { type: 'string' },
        baseline: { type: 'string' },
        since: { type: 'string' },
        limit: { type: 'string' },
      },
    });
    const json = (value: unknown): number => {
      io.out(JSON.stringify(value, null, 2));
      return 0;
    };
    const need = (index: number, what: string): string => {
      const value = positionals[index];
      if (!value) throw new UsageError(`flowloom policy ${sub} needs ${what}`);
      return value;
    };
    switch (sub) {
      case 'validate':
        return validate(io, need(0, 'a policy file'), values.json === true);
      case 'push': {
        const file = need(0, 'a policy file');
        const pushed = (await callApi(io, 'POST', '/api/v1/policies', {
          source: readSource(file),
          filename: file,
          ...(values.message ? { message: values.message } : {}),
          ...(values['job-policy'] ? { jobPolicy: true } : {}),
        })) as Record<string, unknown> & { diff?: { added: string[]; removed: string[]; changed: string[] } };
        if (values.json) return json(pushed);
        io.out(
          pushed.created
            ? `pushed ${pushed.name} version ${pushed.version} (#${pushed.seq}) by ${pushed.author}`
            : `unchanged: ${pushed.name} version ${pushed.version} (#${pushed.seq}) already holds this document`,
        );
        if (pushed.diff)
          io.out(
            `  rules added: ${pushed.diff.added.join(', ') || '-'}; removed: ${pushed.diff.removed.join(', ') || '-'}; changed: ${pushed.diff.changed.join(', ') || '-'}`,
          );
        io.out(
          values['job-policy']
            ? `  run a job under it: flowloom run --policy ${short(pushed.version)} -- CMD ARGS`
            : `  roll it out: flowloom policy promote ${pushed.name} ${short(pushed.version)} --mode shadow`,
        );
        return 0;
      }
      case 'diff': {
        const target = need(0, 'a policy name or file');
        const result = (
          existsSync(target) && !values.from && !values.to
            ? await callApi(io, 'POST', '/api/v1/policies/diff', {
                source: readSource(target),
                filename: target,
              })
            : await callApi(
                io,
                'GET',
                `/api/v1/policies/${enc(target)}/diff?${new URLSearchParams({
                  ...(values.from ? { from: values.from } : {}),
                  ...(values.to ? { to: values.to } : {}),
                })}`,
              )
        ) as { text: string };
        if (values.json) return json(result);
        io.out(result.text);
        return 0;
      }
      case 'promote': {
        const name = need(0, 'a policy name');
        const version = need(1, 'a version');
        const mode = values.mode;
        if (mode !== 'shadow' && mode !== 'canary' && mode !== 'enforce')
          throw new UsageError('--mode must be shadow, canary or enforce');
        const percent = values.percent === undefined ? undefined : Number(values.percent);
        if (mode === 'canary' && !(percent !== undefined && percent > 0 && percent < 100))
          throw new UsageError('a canary needs --percent between 0 and 100');
        if (values.by !== undefined && values.by !== 'job' && values.by !== 'key')
          throw new UsageError('--by must be job or key');
        const result = (await callApi(io, 'POST', `/api/v1/policies/${enc(name)}/promotions`, {
          version,
          mode,
          ...(percent !== undefined && mode === 'canary' ? { percent } : {}),
          ...(values.by ? { by: values.by } : {}),
        })) as { status: string; promotion?: { id: string; author: string }; deployment?: DeploymentView };
        if (values.json) return json(result);
        if (result.status === 'pending' && result.promotion) {
          io.out(
            `promotion ${result.promotion.id} is waiting for approval by someone other than ${result.promotion.author}:`,
          );
          io.out(`  flowloom policy approve ${result.promotion.id}`);
        } else {
          io.out(`${name}: ${describeDeployment(result.deployment ?? null)}`);
        }
        return 0;
      }
      case 'approve': {
        const id = need(0, 'a promotion id');
        const result = (await callApi(io, 'POST', `/api/v1/promotions/${enc(id)}/approve`, {})) as {
          promotion: { name: string; version: string; mode: string; approvedBy: string };
          deployment: DeploymentView;
        };
        if (values.json) return json(result);
        io.out(
          `approved by ${result.promotion.approvedBy}: ${result.promotion.name} ${short(result.promotion.version)} -> ${result.promotion.mode}`,
        );
        io.out(`${result.promotion.name}: ${describeDeployment(result.deployment)}`);
        return 0;
      }
      case 'rollback': {
        const name = need(0, 'a policy name');
        const result = (await callApi(io, 'POST', `/api/v1/policies/${enc(name)}/rollback`, {
          ...(values.to ? { to: values.to } : {}),
        })) as { deployment: DeploymentView };
        if (values.json) return json(result);
        io.out(`${name}: ${describeDeployment(result.deployment)}`);
        return 0;
      }
      case 'replay': {
        const name = positionals[0];
        if (!values.version) throw new UsageError('flowloom policy replay needs --version VERSION');
        const limit = values.limit === undefined ? undefined : Number(values.limit);
        if (limit !== undefined && !(Number.isInteger(limit) && limit > 0))
          throw new UsageError('--limit must be a positive whole number');
        const result = (await callApi(
          io,
          'POST',
          name ? `/api/v1/policies/${enc(name)}/replay` : '/api/v1/replay',
          {
            version: values.version,
            ...(values.baseline ? { baseline: values.baseline } : {}),
            ...(values.since ? { since: values.since } : {}),
            ...(limit ? { limit } : {}),
          },
        )) as { name: string; text: string; since: string; candidate: string; baseline: string | null };
        if (values.json) return json(result);
        io.out(
          `${result.name}: ${short(result.candidate)} against ${result.baseline ? short(result.baseline) : 'no policy (allow everything)'}, decisions since ${result.since}`,
        );
        io.out(result.text);
        return 0;
      }
      case 'list': {
        const { data } = (await callApi(io, 'GET', '/api/v1/policies')) as {
          data: Array<{
            name: string;
            latest: { version: string; seq: number } | null;
            deployment: DeploymentView | null;
          }>;
        };
        if (values.json) return json(data);
        if (data.length === 0) io.out('No policies. Push one: flowloom policy push FILE');
        for (const p of data)
          io.out(
            `${p.name}  latest #${p.latest?.seq ?? '-'} ${short(p.latest?.version)}  ${describeDeployment(p.deployment)}`,
          );
        return 0;
      }
      case 'show': {
        const name = need(0, 'a policy name');
        const version = positionals[1];
        if (version) {
          const v = (await callApi(io, 'GET', `/api/v1/policies/${enc(name)}/versions/${enc(version)}`)) as {
            version: string;
            seq: number;
            author: string;
            message: string;
            createdAt: string;
            source: string;
          };
          if (values.json) return json(v);
          io.out(`${name} version ${v.version} (#${v.seq}) by ${v.author} at ${v.createdAt}: ${v.message}\n`);
          io.out(v.source);
          return 0;
        }
        const p = (await callApi(io, 'GET', `/api/v1/policies/${enc(name)}`)) as {
          deployment: DeploymentView | null;
          versions: Array<{
            version: string;
            seq: number;
            author: string;
            message: string;
            createdAt: string;
            rules: number;
          }>;
          promotions: Array<{
            id: string;
            version: string;
            mode: string;
            status: string;
            requestedBy: string;
            approvedBy: string | null;
          }>;
          history: DeploymentView[];
        };
        if (values.json) return json(p);
        io.out(`${name}: ${describeDeployment(p.deployment)}`);
        io.out('versions:');
        for (const v of p.versions)
          io.out(
            `  #${v.seq} ${short(v.version)}  ${v.rules} rules  ${v.author}  ${v.createdAt}  ${v.message}`,
          );
        if (p.promotions.length > 0) io.out('promotions:');
        for (const pr of p.promotions)
          io.out(
            `  ${pr.id}  ${short(pr.version)} -> ${pr.mode}  ${pr.status}  requested by ${pr.requestedBy}${pr.approvedBy ? `, approved by ${pr.approvedBy}` : ''}`,
          );
        io.out('deployments:');
        for (const d of p.history) io.out(`  ${d.at}  ${describeDeployment(d)}`);
        return 0;
      }
      case 'decision': {
        const id = need(0, 'a decision id');
        const d = (await callApi(io, 'GET', `/api/v1/decisions/${enc(id)}`)) as { explanation: string[] };
        if (values.json) return json(d);
        for (const line of d.explanation) io.out(line);
        return 0;
      }
      default:
        throw new UsageError(sub ? `unknown policy command "${sub}"` : 'flowloom policy needs a command');
    }
  },
};

function validate(io: Io, file: string, asJson: boolean): number {
  const loaded = loadPolicy(readSource(file), { filename: file });
  if (!loaded.ok) {
    if (asJson) io.out(JSON.stringify({ ok: false, errors: loaded.errors }, null, 2));
    else io.err(formatDiagnostics(loaded.errors));
    return 1;
  }
  const summary = {
    ok: true,
    name: loaded.policy.name,
    version: loaded.policy.version,
    rules: loaded.document.rules.length,
  };
  if (asJson) io.out(JSON.stringify(summary, null, 2));
  else io.out(`${file}: valid policy "${summary.name}", ${summary.rules} rules, version ${summary.version}`);
  return 0;
}
