/** A policy of one rule that blocks the requests of `job`: a bundle whose arrival a request shows. */
export function blockJobPolicy(name: string, job = 'blocked'): string {
  return `name: ${name}
rules:
  - id: blocked-job
    condition: request.job == "${job}"
    action: block
    message: this job is blocked
`;
}
