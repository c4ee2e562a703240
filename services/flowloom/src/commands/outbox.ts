import { parseArgs } from 'node:util';
import type { ParkedEvent, RedriveOutcome } from '@flowloom/outbox';
import { callApi } from '../api-client.js';
import { type Command, type Io, UsageError } from '../command.js';

/** Whose outbox: each service that parks serves its parked events under its own admin path. */
const OUTBOXES: Record<string, { path: string; where: string }> = {
  gateway: { path: '/api/v1/outbox/parked', where: "the gateway's outbox" },
  policy: { path: '/api/v1/policy-outbox/parked', where: "the policy service's policy_outbox" },
};

const HELP = `Usage: flowloom outbox parked [--service gateway|policy] [--redrive] [--id ID]... [--limit N] [--json]

Events the event bus refused for good (for example a Kafka MESSAGE_TOO_LARGE: a request event too
large for its topic's max.message.bytes) are parked in the outbox instead of blocking the events
after them. Each stays in the database, and a stand-in event (dev.flowloom.outbox.event.parked.v1,
with its id, type, size and SHA-256) takes its place on the audit trail. Through a running FlowLoom
(FLOWLOOM_URL, FLOWLOOM_API_KEY = an admin key):

  flowloom outbox parked                 list the parked events, oldest first
  flowloom outbox parked --redrive       publish every parked event again (after fixing the cause,
                                         e.g. raising the topic's max.message.bytes)
  flowloom outbox parked --redrive --id ID [--id ID2]   only these events

  --service gateway   the gateway's outbox (request events, key changes, ...): the default
  --service policy    the policy service's policy_outbox (policy changes, promotions); through the
                      gateway's URL (it forwards there with FLOWLOOM_POLICY_HTTP_URL) or the policy
                      service's own

Each redrive is recorded on the audit trail (dev.flowloom.outbox.event.redriven.v1). An event
refused again is parked again (with a new stand-in); the command exits 1 then.`;

function printParked(io: Io, p: ParkedEvent): void {
  io.out(
    `${p.id}  ${p.type}  ${p.sizeBytes} bytes  parked ${p.parkedAt}${p.subject ? `  ${p.subject}` : ''}`,
  );
  io.out(`  sha256 ${p.sha256}`);
  io.out(`  ${p.reason}`);
}

export const outboxCommand: Command = {
  name: 'outbox',
  summary: 'List events the bus refused for good (parked) and publish them again',
  help: HELP,
  async run(args, io) {
    const [sub, ...rest] = args;
    if (sub !== 'parked')
      throw new UsageError(`flowloom outbox: unknown subcommand "${sub ?? ''}"\n\n${HELP}`);
    const { values } = parseArgs({
      args: rest,
      strict: true,
      options: {
        redrive: { type: 'boolean' },
        id: { type: 'string', multiple: true },
        limit: { type: 'string' },
        json: { type: 'boolean' },
        service: { type: 'string', default: 'gateway' },
      },
    });
    const outbox = OUTBOXES[values.service];
    if (!outbox)
      throw new UsageError(
        `--service must be ${Object.keys(OUTBOXES).join(' or ')}, not "${values.service}"`,
      );
    if (values.id && !values.redrive) throw new UsageError('--id is for --redrive');
    if (values.redrive) {
      const outcome = (await callApi(io, 'POST', `${outbox.path}/redrive`, {
        ...(values.id ? { ids: values.id } : {}),
      })) as RedriveOutcome;
      if (values.json) io.out(JSON.stringify(outcome, null, 2));
      else {
        io.out(
          `Requeued ${outcome.requeued}: published ${outcome.published.length}, parked again ${outcome.parkedAgain.length}, still on their way ${outcome.pending.length}.`,
        );
        for (const id of outcome.parkedAgain)
          io.out(
            `  parked again: ${id} (still refused: see flowloom outbox parked --service ${values.service})`,
          );
      }
      return outcome.parkedAgain.length > 0 ? 1 : 0;
    }
    const limit = values.limit ?? '100';
    if (!/^\d+$/.test(limit)) throw new UsageError('--limit must be a whole number');
    const { total, data } = (await callApi(io, 'GET', `${outbox.path}?limit=${limit}`)) as {
      total: number;
      data: ParkedEvent[];
    };
    if (values.json) io.out(JSON.stringify({ total, data }, null, 2));
    else if (total === 0) io.out(`No parked events in ${outbox.where}.`);
    else {
      io.out(
        `${total} parked event(s) in ${outbox.where}${total > data.length ? `, the oldest ${data.length} shown` : ''}:`,
      );
      for (const p of data) printParked(io, p);
    }
    return 0;
  },
};
