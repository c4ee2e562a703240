import { z } from 'zod';
import { uuidv7 } from './uuid.js';

/** CloudEvents 1.0, structured JSON mode. `data` is validated per `type` by the payload schemas. */
export const cloudEventSchema = z.object({
  specversion: z.literal('1.0'),
  id: z.string().min(1),
  source: z.string().min(1),
  type: z.string().regex(/^dev\.flowloom\.[a-z0-9_.-]+\.v\d+$/),
  subject: z.string().optional(),
  time: z.string(),
  datacontenttype: z.literal('application/json'),
  data: z.unknown(),
});

export interface CloudEvent<T = unknown> {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  subject?: string;
  time: string;
  datacontenttype: 'application/json';
  data: T;
}

export function createEvent<T>(
  type: string,
  source: string,
  data: T,
  subject?: string,
  now = Date.now(),
): CloudEvent<T> {
  return {
    specversion: '1.0',
    id: uuidv7(now),
    source,
    type,
    ...(subject !== undefined ? { subject } : {}),
    time: new Date(now).toISOString(),
    datacontenttype: 'application/json',
    data,
  };
}
