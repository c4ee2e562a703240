import { AppError } from '@flowloom/errors';
import type { KeyRecord } from '../domain/keys.js';
import type { RequestContext } from './context.js';

const TAG_PATTERN = /^[\x21-\x7e]{1,200}$/;

/** One tag as the caller sent it, and how the entry point names it in errors. */
export interface TagInput {
  value: string | undefined;
  /** The header, field or metadata name, for `param` and messages (`x-flowloom-job`, `job`). */
  name: string;
}

/** A tag's value, checked: absent stays absent; anything but 1-200 printable ASCII is refused. */
function checked(tag: TagInput): string | undefined {
  if (tag.value === undefined) return undefined;
  if (!TAG_PATTERN.test(tag.value)) {
    throw new AppError(
      'invalid_request',
      `${tag.name} must be 1-200 printable ASCII characters without spaces.`,
      { param: tag.name },
    );
  }
  return tag.value;
}

/**
 * The job, session and project a request is tagged with, as every entry point applies them: a job key
 * tags its own job and no other, and a key of a project cannot tag another project.
 */
export function requestTags(
  key: KeyRecord,
  tags: { job: TagInput; session: TagInput; project: TagInput },
): RequestContext['tags'] {
  const taggedJob = checked(tags.job);
  if (key.job && taggedJob && taggedJob !== key.job) {
    throw new AppError(
      'forbidden',
      `This key belongs to job '${key.job}' and cannot tag requests for '${taggedJob}'.`,
      { param: tags.job.name },
    );
  }
  const job = key.job ?? taggedJob;
  const session = checked(tags.session);
  const project = checked(tags.project);
  if (project && key.project && project !== key.project) {
    throw new AppError(
      'forbidden',
      `This key belongs to project '${key.project}' and cannot tag requests for '${project}'.`,
      { param: tags.project.name },
    );
  }
  return { ...(job ? { job } : {}), ...(session ? { session } : {}), ...(project ? { project } : {}) };
}
