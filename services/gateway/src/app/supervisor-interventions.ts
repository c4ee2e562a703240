import {
  type CloudEvent,
  createEvent,
  type Intervention,
  POLICY_INTERVENTION,
  SUPERVISOR_POLICY,
  type SupervisorReport,
} from '@flowloom/contracts';

/**
 * A supervisor's own intervention (`flowloom run` watching a job's process) as an intervention
 * event, so that it reaches the decisions store and the audit trail like the gateway's: with the
 * values measured, the limits crossed, and what was done. Its "policy" is the supervisor's watch
 * settings (SUPERVISOR_POLICY at their hash), its rule the watch.
 */
export function supervisorInterventionEvent(
  source: string,
  job: string,
  report: SupervisorReport,
  reported: { actor: string; requestId: string; decisionId: string },
): CloudEvent<Intervention> {
  const data: Intervention = {
    decisionId: reported.decisionId,
    requestId: reported.requestId,
    ...(report.keyId ? { keyId: report.keyId } : {}),
    job,
    action: report.action,
    actions: [report.action],
    // A supervisor acts on what it finds: there is no shadow mode for its watches.
    enforced: true,
    mode: 'enforce',
    policy: SUPERVISOR_POLICY,
    version: report.version,
    rule: report.watch,
    reason: report.reason,
    signals: report.signals,
    thresholds: report.thresholds,
    origin: 'supervisor',
    supervisor: {
      actor: reported.actor,
      ...(report.attempt !== undefined ? { attempt: report.attempt } : {}),
      ...(report.pid !== undefined ? { pid: report.pid } : {}),
      ...(report.command !== undefined ? { command: report.command } : {}),
      ...(report.at !== undefined ? { at: report.at } : {}),
    },
  };
  return createEvent(POLICY_INTERVENTION, source, data, `job/${job}`);
}
