export { type EntryDifference, firstDifference, type TamperKind } from './bundle-diagnose.js';
export {
  type BundleProofs,
  type EarlierCheckpoint,
  formatPublicKeyFile,
  type InclusionEvidence,
  PROOFS_FORMAT,
  parseProofs,
  parsePublicKeyFile,
  prunedLeafHash,
  prunedMarker,
  serializeProofs,
  splitEntryLines,
} from './bundle-format.js';
export {
  type BundleInput,
  type BundleProblem,
  type BundleProblemCode,
  type BundleReport,
  type FirstBadEntry,
  verifyBundle,
} from './bundle-verify.js';
export {
  type Checkpoint,
  formatCheckpoint,
  openCheckpoint,
  parseCheckpointBody,
  parseCheckpointNote,
  signCheckpoint,
  type VerifiedCheckpoint,
} from './checkpoint.js';
export {
  assertLoggableEntry,
  type EntryInput,
  entryBytes,
  entryLeafHash,
  PRUNED_MARKER_PREFIX,
} from './entry.js';
export { isLedgerError, LedgerError, type LedgerErrorCode } from './errors.js';
export { Frontier, type NodeSink } from './frontier.js';
export {
  EMPTY_ROOT_HASH,
  HASH_SIZE,
  hashesEqual,
  leafHash,
  nodeHash,
  sha256,
  toBase64,
  toHex,
} from './hash.js';
export { HashList } from './hash-list.js';
export { canonicalBytes, canonicalize } from './jcs.js';
export {
  ed25519KeyId,
  encodeSignerKey,
  encodeVerifierKey,
  type GeneratedKey,
  generateKey,
  isValidKeyName,
  keyIdHex,
  parseSignerKey,
  parseVerifierKey,
  type SignerKey,
  type VerifierKey,
  verifierFor,
} from './keys.js';
export { InMemoryNodeStore } from './memory-node-store.js';
export { type AppendResult, MerkleLog } from './merkle-log.js';
export { type NodeId, nodeId, rangeNodes } from './node-id.js';
export type { MaybePromise, NodeStore, StoredNode } from './node-store.js';
export {
  type NoteSignature,
  type OpenedNote,
  openSignedNote,
  type ParsedNote,
  parseSignedNote,
  signNote,
} from './note.js';
export {
  assembleProof,
  consistencyPlan,
  foldRight,
  inclusionPlan,
  type ProofPlan,
  rootPlan,
} from './proof-plan.js';
export { merkleTreeHash, referenceConsistencyProof, referenceInclusionProof } from './rfc9162.js';
export { rootFromInclusionProof, verifyConsistency, verifyInclusion } from './verify.js';
