export {
  GATEWAY_OUTBOX,
  type ParkingOutboxName,
  POLICY_OUTBOX,
  parkedGauge,
  reportParked,
} from './metrics.js';
export { OneAtATime } from './one-at-a-time.js';
export type { ParkedEvent, ParkedEvents, RedriveOutcome } from './parked-events.js';
export { listParked, parkedListQuery, redriveBody, redriveRecorded } from './redrive.js';
export { RETRY_ON_NOTICE_MS, RelayLoop, type RelayLoopOptions, type RoundLeft } from './relay-loop.js';
export { type ParkingOutboxTable, SqlParkedEvents } from './sql-parked-events.js';
