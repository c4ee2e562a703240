import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENV_VARIABLES, loadConfig } from '@flowloom/config';
import { parseSignerKey } from '@flowloom/ledger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

// The deployment files, checked offline as CI does: deploy/helm-check.sh installs helm,
// kubernetes-validate, hadolint and the compose-go checker (deploy/tools.sh, cached outside the
// repository), then lints, renders and validates; these tests then read what it rendered and assert
// what an on-prem install relies on.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHART = join(ROOT, 'helm/flowloom');
const SERVICES = ['gateway', 'policy', 'audit'] as const;
const KUBE_VERSION = '1.36';
// Building helm from source on a fresh machine takes minutes; a cached run takes well under a second.
const TOOLS_TIMEOUT_MS = 25 * 60_000;

interface Meta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: Meta;
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}
interface Probe {
  httpGet?: { path: string; port: string | number };
}
interface EnvVar {
  name: string;
  value?: string;
}
interface Container {
  name: string;
  args?: string[];
  ports?: { name: string; containerPort: number }[];
  env?: EnvVar[];
  envFrom?: { secretRef?: { name: string } }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    runAsNonRoot?: boolean;
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
    privileged?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
    seccompProfile?: { type: string };
  };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface PodSpec {
  automountServiceAccountToken?: boolean;
  enableServiceLinks?: boolean;
  securityContext?: {
    runAsNonRoot?: boolean;
    runAsUser?: number;
    runAsGroup?: number;
    seccompProfile?: { type: string };
  };
  containers: Container[];
  volumes?: { name: string; emptyDir?: Record<string, unknown>; configMap?: { name: string } }[];
  affinity?: Record<string, unknown>;
  topologySpreadConstraints?: {
    topologyKey: string;
    labelSelector?: { matchLabels?: Record<string, string> };
  }[];
}
interface PodTemplate {
  metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
  spec: PodSpec;
}
interface NetworkPolicyPort {
  port: number;
  protocol: string;
}
interface NetworkPolicyRule {
  ports?: NetworkPolicyPort[];
  to?: Record<string, unknown>[];
  from?: Record<string, unknown>[];
}
interface NetworkPolicySpec {
  podSelector: { matchLabels?: Record<string, string> };
  policyTypes: string[];
  ingress?: NetworkPolicyRule[];
  egress?: NetworkPolicyRule[];
}

function run(command: string, args: string[], input?: string) {
  const result = spawnSync(command, args, { cwd: ROOT, encoding: 'utf8', input, maxBuffer: 64 << 20 });
  return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
}

function parseManifests(text: string): Manifest[] {
  return parseAllDocuments(text)
    .map((doc) => doc.toJS() as Manifest | null)
    .filter((m): m is Manifest => m !== null && typeof m === 'object');
}

function only(manifests: Manifest[], kind: string, name: string): Manifest {
  const found = manifests.filter((m) => m.kind === kind && m.metadata.name === name);
  expect(found, `${kind}/${name}`).toHaveLength(1);
  return found[0]!;
}

/** A service's Deployment, or its StatefulSet (the gateway with a volume per replica). */
function workload(manifests: Manifest[], name: string): Manifest {
  const found = manifests.filter(
    (m) => (m.kind === 'Deployment' || m.kind === 'StatefulSet') && m.metadata.name === name,
  );
  expect(found, `Deployment or StatefulSet ${name}`).toHaveLength(1);
  return found[0]!;
}

function runsPods(m: Manifest): boolean {
  return m.kind === 'Deployment' || m.kind === 'StatefulSet' || m.kind === 'Job';
}

function podTemplate(m: Manifest): PodTemplate {
  return m.spec?.template as PodTemplate;
}

function matches(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  return Object.entries(selector ?? {}).every(([k, v]) => labels[k] === v);
}

type AuditPodSpec = PodSpec & { initContainers?: (Container & { command?: string[] })[] };

function auditPod(manifests: Manifest[]): AuditPodSpec {
  return podTemplate(workload(manifests, 'flowloom-audit')).spec as AuditPodSpec;
}

function decode(value: string): string {
  return Buffer.from(value, 'base64').toString('utf8');
}

/** Every FLOWLOOM_* variable a service is given must be one the config loader reads (a typo is silent). */
const KNOWN_FLOWLOOM_VARIABLES = new Set([...Object.keys(ENV_VARIABLES), 'FLOWLOOM_CONFIG']);

let tools: Record<string, string> = {};
let out = '';
let check: { status: number | null; stdout: string; stderr: string };
let defaults: Manifest[] = [];
let production: Manifest[] = [];
let scratch = '';

function helm(args: string[]) {
  return run(tools.FLOWLOOM_HELM!, args);
}

/** `helm template` of the chart with extra arguments; fails the test on a render error. */
function render(args: string[], release = 'flowloom'): Manifest[] {
  const result = helm([
    'template',
    release,
    CHART,
    '--namespace',
    'flowloom',
    '--kube-version',
    KUBE_VERSION,
    ...args,
  ]);
  expect(result.stderr, 'helm template stderr').toBe('');
  expect(result.status).toBe(0);
  return parseManifests(result.stdout);
}

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'flowloom-deploy-test-'));
  out = join(scratch, 'rendered');
  // helm-check.sh runs tools.sh first; ask tools.sh again (a no-op then) for the tools' paths.
  check = run('bash', ['deploy/helm-check.sh', out]);
  const installed = run('bash', ['deploy/tools.sh']);
  tools = Object.fromEntries(
    installed.stdout
      .split('\n')
      .map((line) => /^(FLOWLOOM_[A-Z_]+)=(.+)$/.exec(line))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1]!, m[2]!]),
  );
  if (check.status === 0) {
    defaults = parseManifests(readFileSync(join(out, 'default.yaml'), 'utf8'));
    production = parseManifests(readFileSync(join(out, 'production.yaml'), 'utf8'));
  }
}, TOOLS_TIMEOUT_MS);

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('deploy/helm-check.sh', () => {
  it('when run on a machine with only the package registries, then lint, template, kubernetes-validate, hadolint and the compose check all pass', () => {
    expect(check.status, `deploy/helm-check.sh failed:\n${check.stderr.slice(-4000)}`).toBe(0);
    expect(check.stderr).toContain('all checks passed');
    expect(Object.keys(tools).sort()).toEqual([
      'FLOWLOOM_COMPOSE_CHECK',
      'FLOWLOOM_HADOLINT',
      'FLOWLOOM_HELM',
      'FLOWLOOM_KUBERNETES_VALIDATE',
    ]);
    expect(helm(['version', '--template', '{{.Version}}']).stdout).toBe('v3.21.4');
  });

  it('when a manifest has a field Kubernetes does not know, then kubernetes-validate --strict rejects it (so its pass means something)', () => {
    const bad = join(scratch, 'bad.yaml');
    const deployment = defaults.find((m) => m.kind === 'Deployment')!;
    const template = podTemplate(deployment);
    const broken = {
      ...deployment,
      spec: {
        ...deployment.spec,
        template: { ...template, spec: { ...template.spec, runAsNonRooot: true } },
      },
    };
    writeFileSync(bad, JSON.stringify(broken));
    const result = run(tools.FLOWLOOM_KUBERNETES_VALIDATE!, ['--strict', '--quiet', '-k', KUBE_VERSION, bad]);
    expect(result.status).not.toBe(0);
    expect(result.stdout + result.stderr).toContain('runAsNonRooot');
  });
});

describe('helm/flowloom with the default values', () => {
  it('when rendered, then there is a Deployment, an HTTP and a gRPC Service and a PodDisruptionBudget per service', () => {
    for (const name of SERVICES) {
      const deployment = workload(defaults, `flowloom-${name}`);
      const pod = podTemplate(deployment);
      expect(pod.spec.containers[0]!.args).toEqual(['serve', name]);

      const http = only(defaults, 'Service', `flowloom-${name}`);
      const grpc = only(defaults, 'Service', `flowloom-${name}-grpc`);
      const pdb = only(defaults, 'PodDisruptionBudget', `flowloom-${name}`);
      for (const service of [http, grpc]) {
        const selector = service.spec?.selector as Record<string, string>;
        expect(matches(selector, pod.metadata.labels)).toBe(true);
        // Selects this service's pods and no other service's.
        for (const other of SERVICES.filter((s) => s !== name)) {
          const otherPod = podTemplate(workload(defaults, `flowloom-${other}`));
          expect(matches(selector, otherPod.metadata.labels)).toBe(false);
        }
      }
      expect(http.spec?.ports).toEqual([
        expect.objectContaining({ name: 'http', port: 8080, targetPort: 'http' }),
      ]);
      expect(grpc.spec?.ports).toEqual([
        expect.objectContaining({ name: 'grpc', port: 50051, targetPort: 'grpc' }),
      ]);
      const pdbSelector = (pdb.spec?.selector as { matchLabels?: Record<string, string> } | undefined)
        ?.matchLabels;
      expect(matches(pdbSelector, pod.metadata.labels)).toBe(true);
      expect(pdb.spec?.maxUnavailable ?? pdb.spec?.minAvailable).toBeDefined();
    }
  });

  it('when rendered, then every pod runs non-root with a read-only root filesystem, no capabilities and the RuntimeDefault seccomp profile', () => {
    const pods = defaults
      .filter((m) => runsPods(m))
      .map((m) => [m.metadata.name, podTemplate(m).spec] as const);
    expect(pods.length).toBe(4);
    for (const [name, spec] of pods) {
      expect(spec.securityContext?.runAsNonRoot, name).toBe(true);
      expect(spec.securityContext?.runAsUser, name).toBe(10001);
      expect(spec.securityContext?.seccompProfile?.type, name).toBe('RuntimeDefault');
      expect(spec.automountServiceAccountToken, name).toBe(false);
      expect(spec.enableServiceLinks, name).toBe(false);
      for (const container of spec.containers) {
        const sc = container.securityContext;
        expect(sc?.runAsNonRoot, name).toBe(true);
        expect(sc?.readOnlyRootFilesystem, name).toBe(true);
        expect(sc?.allowPrivilegeEscalation, name).toBe(false);
        expect(sc?.privileged, name).toBe(false);
        expect(sc?.capabilities?.drop, name).toEqual(['ALL']);
        expect(sc?.capabilities?.add, name).toBeUndefined();
        expect(sc?.seccompProfile?.type, name).toBe('RuntimeDefault');
        // The root filesystem is read-only: tsx's transpile cache needs a writable /tmp.
        const tmp = container.volumeMounts?.find((v) => v.mountPath === '/tmp');
        expect(tmp, `${name} mounts /tmp`).toBeDefined();
        expect(spec.volumes?.find((v) => v.name === tmp?.name)?.emptyDir, name).toBeDefined();
        expect(container.resources?.requests?.cpu, name).toBeDefined();
        expect(container.resources?.requests?.memory, name).toBeDefined();
        expect(container.resources?.limits?.memory, name).toBeDefined();
        expect(container.resources?.limits?.cpu, name).toBeDefined();
      }
    }
  });

  it('when rendered, then liveness and startup probes GET /healthz and readiness GET /readyz on the http port', () => {
    for (const name of SERVICES) {
      const container = podTemplate(workload(defaults, `flowloom-${name}`)).spec.containers[0]!;
      expect(container.ports).toEqual([
        expect.objectContaining({ name: 'http', containerPort: 8080 }),
        expect.objectContaining({ name: 'grpc', containerPort: 50051 }),
      ]);
      expect(container.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'http' });
      expect(container.startupProbe?.httpGet).toEqual({ path: '/healthz', port: 'http' });
      expect(container.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'http' });
    }
  });

  it('when rendered, then each service gets only variables the config loader knows, listens on every interface and loads the Secret', () => {
    for (const name of SERVICES) {
      const container = podTemplate(workload(defaults, `flowloom-${name}`)).spec.containers[0]!;
      const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value]));
      for (const variable of Object.keys(env).filter((v) => v.startsWith('FLOWLOOM_'))) {
        expect(
          KNOWN_FLOWLOOM_VARIABLES.has(variable),
          `${name}: ${variable} is read by @flowloom/config`,
        ).toBe(true);
      }
      expect(env.FLOWLOOM_HOST).toBe('0.0.0.0');
      expect(env.FLOWLOOM_CONFIG).toBe(`/etc/flowloom/${name}.yaml`);
      expect(container.envFrom).toEqual([{ secretRef: { name: 'flowloom' } }]);
    }
  });

  it("when the real config loader reads a pod's file and variables, then the service listens on the ports its probes and Services use", () => {
    const configMap = only(defaults, 'ConfigMap', 'flowloom');
    expect(Object.keys(configMap.data ?? {}).sort()).toEqual(['audit.yaml', 'gateway.yaml', 'policy.yaml']);
    for (const name of SERVICES) {
      const container = podTemplate(workload(defaults, `flowloom-${name}`)).spec.containers[0]!;
      const env: Record<string, string> = {};
      for (const e of container.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
      const file = join(scratch, `${name}.yaml`);
      writeFileSync(file, configMap.data![`${name}.yaml`]!);
      const config = loadConfig({ env: { ...env, FLOWLOOM_CONFIG: file }, cwd: scratch });
      expect(config.host).toBe('0.0.0.0');
      expect(config.dataDir).toBe('/data');
      // The standalone audit service listens on audit.httpPort/grpcPort, the others on httpPort/grpcPort.
      const [http, grpc] =
        name === 'audit'
          ? [config.audit.httpPort, config.audit.grpcPort]
          : [config.httpPort, config.grpcPort];
      expect({ name, http, grpc }).toEqual({ name, http: 8080, grpc: 50051 });
    }
  });

  it('when the policy service is deployed, then the gateway streams bundles from its gRPC Service', () => {
    const container = podTemplate(workload(defaults, 'flowloom-gateway')).spec.containers[0]!;
    const url = container.env?.find((e) => e.name === 'FLOWLOOM_POLICY_SERVICE_URL')?.value;
    expect(url).toBe('flowloom-policy-grpc.flowloom.svc:50051');
    only(defaults, 'Service', 'flowloom-policy-grpc');
    const withoutPolicy = render(['--set', 'policy.enabled=false']);
    const gateway = podTemplate(workload(withoutPolicy, 'flowloom-gateway')).spec.containers[0]!;
    expect(gateway.env?.map((e) => e.name)).not.toContain('FLOWLOOM_POLICY_SERVICE_URL');
    expect(withoutPolicy.filter((m) => m.metadata.name.startsWith('flowloom-policy'))).toEqual([]);
  });

  it('when policy and audit are deployed, then the gateway forwards their admin APIs to their HTTP Services, which the NetworkPolicies let it reach', () => {
    const gateway = workload(defaults, 'flowloom-gateway');
    const env = podTemplate(gateway).spec.containers[0]!.env ?? [];
    const policies = defaults.filter((m) => m.kind === 'NetworkPolicy');
    /** Whether a rule opens `port` to or from pods with `labels` (its `from` or `to` peers). */
    const opens = (
      rule: NetworkPolicyRule,
      side: 'from' | 'to',
      labels: Record<string, string>,
      port: number,
    ) =>
      (rule.ports ?? []).some((p) => p.port === port) &&
      (rule[side] ?? []).some((peer) => {
        const selector = peer.podSelector as { matchLabels?: Record<string, string> } | undefined;
        return selector !== undefined && matches(selector.matchLabels, labels);
      });
    for (const [name, variable] of [
      ['policy', 'FLOWLOOM_POLICY_HTTP_URL'],
      ['audit', 'FLOWLOOM_AUDIT_HTTP_URL'],
    ] as const) {
      const url = new URL(env.find((e) => e.name === variable)?.value ?? '');
      // The peer's HTTP Service, by its cluster name and port, reaching the pods' http port.
      expect(url.hostname).toBe(`flowloom-${name}.flowloom.svc`);
      const service = only(defaults, 'Service', `flowloom-${name}`).spec as {
        ports: { port: number; targetPort: string }[];
      };
      expect(service.ports).toEqual([
        expect.objectContaining({ port: Number(url.port), targetPort: 'http' }),
      ]);
      const container = podTemplate(workload(defaults, `flowloom-${name}`)).spec.containers[0]!;
      const httpPort = container.ports?.find((p) => p.name === 'http')?.containerPort ?? 0;
      // The peer's NetworkPolicy admits the gateway's pods on that port, and the gateway may send there.
      const spec = only(policies, 'NetworkPolicy', `flowloom-${name}`).spec as unknown as NetworkPolicySpec;
      const gatewayLabels = podTemplate(gateway).metadata.labels;
      expect((spec.ingress ?? []).some((rule) => opens(rule, 'from', gatewayLabels, httpPort))).toBe(true);
      const peerLabels = podTemplate(workload(defaults, `flowloom-${name}`)).metadata.labels;
      const egress = only(policies, 'NetworkPolicy', 'flowloom-egress').spec as unknown as NetworkPolicySpec;
      expect((egress.egress ?? []).some((rule) => opens(rule, 'to', peerLabels, httpPort))).toBe(true);
    }
    // A peer that is not deployed is not forwarded to (the gateway then answers 503 naming the setting).
    const withoutAudit = render(['--set', 'audit.enabled=false', '--set', 'policy.service.httpPort=9090']);
    const alone = podTemplate(workload(withoutAudit, 'flowloom-gateway')).spec.containers[0]!.env ?? [];
    expect(alone.map((e) => e.name)).not.toContain('FLOWLOOM_AUDIT_HTTP_URL');
    expect(alone.find((e) => e.name === 'FLOWLOOM_POLICY_HTTP_URL')?.value).toBe(
      'http://flowloom-policy.flowloom.svc:9090',
    );
  });

  it('when an audit signing key Secret is named, then an init container copies it into a 0600 file every audit pod reads read-only and requires', () => {
    const manifests = render(['--set', 'auditSigningKey.existingSecret=audit-signing-key']);
    const spec = auditPod(manifests);
    const init = spec.initContainers?.[0];
    expect(init?.command?.join(' ')).toContain("chmodSync('/var/run/flowloom/audit-key/signing-key',0o600)");
    expect(init?.securityContext?.readOnlyRootFilesystem).toBe(true);
    const env = spec.containers[0]!.env ?? [];
    expect(env).toContainEqual({
      name: 'FLOWLOOM_AUDIT_SIGNING_KEY_FILE',
      value: '/var/run/flowloom/audit-key/signing-key',
    });
    expect(env).toContainEqual({ name: 'FLOWLOOM_AUDIT_SIGNING_KEY_MODE', value: 'provided' });
    // The key's own name is the log's: the chart names nothing.
    expect(env.map((e) => e.name)).not.toContain('FLOWLOOM_AUDIT_ORIGIN');
    expect(spec.containers[0]!.volumeMounts).toContainEqual({
      name: 'audit-key',
      mountPath: '/var/run/flowloom/audit-key',
      readOnly: true,
    });
    const volumes = spec.volumes as { name: string; secret?: { secretName: string; defaultMode: number } }[];
    expect(volumes.find((v) => v.name === 'audit-key-secret')?.secret).toEqual(
      expect.objectContaining({ secretName: 'audit-signing-key', defaultMode: 0o440 }),
    );
    expect(manifests.filter((m) => m.kind === 'Secret').map((m) => m.metadata.name)).not.toContain(
      'flowloom-audit-signing-key',
    );
    // The other services never see the key.
    for (const name of ['gateway', 'policy']) {
      const other = podTemplate(workload(manifests, `flowloom-${name}`)).spec;
      expect(JSON.stringify(other)).not.toContain('audit-signing-key');
    }
  });

  it('when no key Secret is named, then the chart keeps a generated seed Secret and every audit pod derives the same key from it, which the service requires', () => {
    const secret = only(defaults, 'Secret', 'flowloom-audit-signing-key');
    expect(secret.metadata.annotations?.['helm.sh/resource-policy']).toBe('keep');
    const seedText = decode(secret.data!.seed!);
    expect(Buffer.from(seedText, 'base64')).toHaveLength(32);
    expect(decode(only(render([]), 'Secret', 'flowloom-audit-signing-key').data!.seed!)).not.toBe(seedText);

    const spec = auditPod(defaults);
    const init = spec.initContainers?.[0];
    const env = spec.containers[0]!.env ?? [];
    const value = (name: string) => env.find((e) => e.name === name)?.value;
    expect(value('FLOWLOOM_AUDIT_SIGNING_KEY_MODE')).toBe('provided');
    expect(value('FLOWLOOM_AUDIT_ORIGIN')).toBe('flowloom.flowloom/audit');
    expect(spec.containers[0]!.volumeMounts).toContainEqual({
      name: 'audit-key',
      mountPath: '/var/run/flowloom/audit-key',
      readOnly: true,
    });
    // What the init container runs, with the Secret's and the emptyDir's paths mapped to a folder here:
    // each replica gets the same key, named as the service's origin, 0600.
    const dir = mkdtempSync(join(scratch, 'audit-key-'));
    writeFileSync(join(dir, 'seed'), seedText);
    const args = (init?.args ?? []).map((a) =>
      a
        .replace('/var/run/flowloom/audit-key-secret/seed', join(dir, 'seed'))
        .replace('/var/run/flowloom/audit-key/signing-key', join(dir, 'signing-key')),
    );
    expect(args.slice(0, 2)).toEqual(['audit', 'keygen']);
    const keys = [1, 2].map(() => {
      const result = run(process.execPath, [join(ROOT, 'services/flowloom/bin/flowloom.js'), ...args]);
      expect(result.status, result.stderr).toBe(0);
      expect(statSync(join(dir, 'signing-key')).mode & 0o777).toBe(0o600);
      return readFileSync(join(dir, 'signing-key'), 'utf8');
    });
    expect(keys[1]).toBe(keys[0]);
    expect(parseSignerKey(keys[0]!.trim()).name).toBe(value('FLOWLOOM_AUDIT_ORIGIN'));
    const config = loadConfig({
      env: Object.fromEntries(
        env.filter((e) => e.name.startsWith('FLOWLOOM_AUDIT_')).map((e) => [e.name, e.value]),
      ),
      cwd: dir,
    });
    expect(config.audit).toMatchObject({
      signingKeyMode: 'provided',
      origin: 'flowloom.flowloom/audit',
      signingKeyFile: '/var/run/flowloom/audit-key/signing-key',
    });
  });

  it('when config.audit.origin is set, then the derived key carries that name', () => {
    const spec = auditPod(render(['--set', 'config.audit.origin=audit.example.com/flowloom']));
    expect(spec.initContainers?.[0]?.args).toContain('audit.example.com/flowloom');
    expect(spec.containers[0]!.env).toContainEqual({
      name: 'FLOWLOOM_AUDIT_ORIGIN',
      value: 'audit.example.com/flowloom',
    });
  });

  it('when no admin key is given, then the Secret holds a generated one (base64, different on every install), and nothing else in clear', () => {
    const secret = only(defaults, 'Secret', 'flowloom');
    expect(secret.stringData).toBeUndefined();
    expect(Object.keys(secret.data ?? {})).toEqual(['FLOWLOOM_ADMIN_KEY']);
    const key = decode(secret.data!.FLOWLOOM_ADMIN_KEY!);
    expect(key).toMatch(/^flk_[A-Za-z0-9]{43}$/);
    const again = only(render([]), 'Secret', 'flowloom');
    expect(decode(again.data!.FLOWLOOM_ADMIN_KEY!)).not.toBe(key);
  });

  it('when secrets are given in values, then they appear only base64-encoded in Secrets, never in the ConfigMap or pod specs', () => {
    const secrets = {
      'postgresql.url': 'postgres://flowloom:pg-secret-3141@db.internal:5432/flowloom',
      'redis.url': 'redis://:redis-secret-2718@cache.internal:6379',
      'auth.adminKey': 'flk_admin-secret-1618-abcdefgh',
      'auth.policyServiceKey': 'flk_gateway-service-1732-abcdefgh',
      'providerKeys.OPENAI_API_KEY': 'sk-openai-secret-1414',
    };
    const args = Object.entries(secrets).flatMap(([k, v]) => ['--set-string', `${k}=${v}`]);
    const result = helm(['template', 'flowloom', CHART, '--kube-version', KUBE_VERSION, ...args]);
    expect(result.status, result.stderr).toBe(0);
    for (const value of Object.values(secrets)) expect(result.stdout).not.toContain(value);
    const manifests = parseManifests(result.stdout);
    const data = only(manifests, 'Secret', 'flowloom').data ?? {};
    expect(decode(data.FLOWLOOM_DATABASE_URL!)).toBe(secrets['postgresql.url']);
    expect(decode(data.FLOWLOOM_REDIS_URL!)).toBe(secrets['redis.url']);
    expect(decode(data.FLOWLOOM_ADMIN_KEY!)).toBe(secrets['auth.adminKey']);
    expect(decode(data.FLOWLOOM_POLICY_SERVICE_KEY!)).toBe(secrets['auth.policyServiceKey']);
    expect(decode(data.OPENAI_API_KEY!)).toBe(secrets['providerKeys.OPENAI_API_KEY']);
    // The migration hook runs before the release's Secret exists: it has its own, with the URL only.
    const hookSecret = only(manifests, 'Secret', 'flowloom-migrations');
    expect(Object.keys(hookSecret.data ?? {})).toEqual(['FLOWLOOM_DATABASE_URL']);
  });

  it('when rendered, then the migration Job is a pre-install/pre-upgrade hook that runs after its Secret and keeps a failed run for its logs', () => {
    const job = only(defaults, 'Job', 'flowloom-migrations');
    const annotations = job.metadata.annotations ?? {};
    expect(annotations['helm.sh/hook']).toBe('pre-install,pre-upgrade');
    expect(annotations['helm.sh/hook-delete-policy']).toBe('before-hook-creation,hook-succeeded');
    const hookSecret = only(defaults, 'Secret', 'flowloom-migrations');
    expect(hookSecret.metadata.annotations?.['helm.sh/hook']).toBe('pre-install,pre-upgrade');
    expect(Number(hookSecret.metadata.annotations?.['helm.sh/hook-weight'])).toBeLessThan(
      Number(annotations['helm.sh/hook-weight']),
    );
    const container = podTemplate(job).spec.containers[0]!;
    expect(container.args).toEqual(['migrate']);
    expect(container.envFrom).toEqual([{ secretRef: { name: 'flowloom-migrations' } }]);
    expect(podTemplate(job).spec).not.toHaveProperty('serviceAccountName');
  });

  it('when rendered, then the migration Job creates the audit ledger role the audit pods run under, and members are granted it', () => {
    const envOf = (m: Manifest) =>
      Object.fromEntries((podTemplate(m).spec.containers[0]!.env ?? []).map((e) => [e.name, e.value]));
    const job = envOf(only(defaults, 'Job', 'flowloom-migrations'));
    const audit = envOf(workload(defaults, 'flowloom-audit'));
    expect(job.FLOWLOOM_AUDIT_DB_ROLE).toBe('flowloom_audit_writer');
    expect(audit.FLOWLOOM_AUDIT_DB_ROLE).toBe(job.FLOWLOOM_AUDIT_DB_ROLE);
    expect(job).not.toHaveProperty('FLOWLOOM_AUDIT_DB_ROLE_MEMBERS');
    const custom = render([
      '--set',
      'auditDbRole.name=ledger_writer',
      '--set',
      'auditDbRole.members={audit_login,auditor}',
    ]);
    const customJob = envOf(only(custom, 'Job', 'flowloom-migrations'));
    expect(customJob).toMatchObject({
      FLOWLOOM_AUDIT_DB_ROLE: 'ledger_writer',
      FLOWLOOM_AUDIT_DB_ROLE_MEMBERS: 'audit_login,auditor',
    });
    expect(envOf(workload(custom, 'flowloom-audit')).FLOWLOOM_AUDIT_DB_ROLE).toBe('ledger_writer');
    // The real config loader accepts what the Job gets.
    expect(
      loadConfig({
        env: {
          FLOWLOOM_AUDIT_DB_ROLE: 'ledger_writer',
          FLOWLOOM_AUDIT_DB_ROLE_MEMBERS: 'audit_login,auditor',
        },
        cwd: scratch,
      }).audit,
    ).toMatchObject({ dbRole: 'ledger_writer', dbRoleMembers: ['audit_login', 'auditor'] });
  });

  it('when rendered, then a default-deny NetworkPolicy covers every pod of the release, and only the needed traffic is allowed', () => {
    const policies = defaults.filter((m) => m.kind === 'NetworkPolicy');
    const specOf = (name: string) =>
      only(policies, 'NetworkPolicy', name).spec as unknown as NetworkPolicySpec;
    const deny = specOf('flowloom-default-deny');
    expect(deny.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(deny.ingress).toBeUndefined();
    expect(deny.egress).toBeUndefined();
    for (const m of defaults.filter((x) => runsPods(x))) {
      expect(matches(deny.podSelector.matchLabels, podTemplate(m).metadata.labels), m.metadata.name).toBe(
        true,
      );
    }

    const egressPorts = (specOf('flowloom-egress').egress ?? []).flatMap((r) => r.ports ?? []);
    expect(egressPorts).toEqual(
      expect.arrayContaining([
        { port: 53, protocol: 'UDP' },
        { port: 53, protocol: 'TCP' },
        { port: 5432, protocol: 'TCP' },
      ]),
    );
    // Kafka and Redis are opened only when configured (no brokers, no Redis URL by default).
    expect(egressPorts).not.toContainEqual({ port: 9092, protocol: 'TCP' });
    expect(egressPorts).not.toContainEqual({ port: 443, protocol: 'TCP' });

    const gateway = specOf('flowloom-gateway');
    expect(gateway.ingress?.[0]?.ports).toEqual([
      { port: 8080, protocol: 'TCP' },
      { port: 50051, protocol: 'TCP' },
    ]);
    expect(gateway.egress).toEqual([{ ports: [{ port: 443, protocol: 'TCP' }] }]);

    for (const name of ['policy', 'audit']) {
      const spec = specOf(`flowloom-${name}`);
      expect(spec.ingress).toHaveLength(1);
      const from = spec.ingress?.[0]?.from as { podSelector: { matchLabels: Record<string, string> } }[];
      expect(from).toEqual([{ podSelector: { matchLabels: deny.podSelector.matchLabels } }]);
      // Nothing outside the release reaches policy or audit, and only the gateway may call providers.
      expect(spec.egress).toBeUndefined();
    }
  });

  it('when rendered, then each gateway replica keeps its data folder (the outbox spool) on a claim of its own, and policy and audit use an emptyDir', () => {
    const gateway = workload(defaults, 'flowloom-gateway');
    expect(gateway.kind).toBe('StatefulSet');
    expect(gateway.spec).toMatchObject({
      serviceName: 'flowloom-gateway',
      podManagementPolicy: 'Parallel',
      updateStrategy: { type: 'RollingUpdate' },
    });
    // Scaling down or uninstalling must not delete a claim whose spool may still hold events.
    expect(gateway.spec).not.toHaveProperty('persistentVolumeClaimRetentionPolicy');
    const claims = gateway.spec?.volumeClaimTemplates as {
      metadata: { name: string };
      spec: {
        accessModes: string[];
        storageClassName?: string;
        resources: { requests: { storage: string } };
      };
    }[];
    expect(claims).toHaveLength(1);
    expect(claims[0]!.metadata.name).toBe('data');
    expect(claims[0]!.spec).toEqual({
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: '1Gi' } },
    });
    const pod = podTemplate(gateway).spec;
    expect(pod.containers[0]!.volumeMounts).toContainEqual({ name: 'data', mountPath: '/data' });
    // /data is the claim, not a pod volume of the same name.
    expect(pod.volumes?.map((v) => v.name)).not.toContain('data');
    for (const name of ['policy', 'audit']) {
      const other = workload(defaults, `flowloom-${name}`);
      expect(other.kind).toBe('Deployment');
      expect(podTemplate(other).spec.volumes?.find((v) => v.name === 'data')?.emptyDir).toBeDefined();
    }
    // The gateway's file says what it does when PostgreSQL or Redis is down, and the loader takes it.
    const file = join(scratch, 'gateway-outbox.yaml');
    writeFileSync(file, only(defaults, 'ConfigMap', 'flowloom').data!['gateway.yaml']!);
    const config = loadConfig({ env: { FLOWLOOM_CONFIG: file }, cwd: scratch });
    expect({
      outboxOnDatabaseDown: config.outboxOnDatabaseDown,
      outboxFsync: config.outboxFsync,
      limitsFallback: config.limitsFallback,
    }).toEqual({ outboxOnDatabaseDown: 'spool', outboxFsync: 'interval', limitsFallback: 'local' });
  });

  it('when gateway persistence is sized, given a class, or turned off, then the claims follow, or the gateway is a Deployment with an emptyDir that kubernetes-validate accepts', () => {
    const sized = workload(
      render([
        '--set',
        'gateway.persistence.size=5Gi',
        '--set',
        'gateway.persistence.storageClassName=fast-ssd',
        '--set',
        'gateway.persistence.accessModes={ReadWriteOncePod}',
      ]),
      'flowloom-gateway',
    );
    expect(sized.spec?.volumeClaimTemplates).toMatchObject([
      {
        spec: {
          accessModes: ['ReadWriteOncePod'],
          storageClassName: 'fast-ssd',
          resources: { requests: { storage: '5Gi' } },
        },
      },
    ]);

    const off = render([
      '--set',
      'gateway.persistence.enabled=false',
      '--set',
      'gateway.autoscaling.enabled=true',
    ]);
    const gateway = workload(off, 'flowloom-gateway');
    expect(gateway.kind).toBe('Deployment');
    expect(gateway.spec).not.toHaveProperty('volumeClaimTemplates');
    expect(podTemplate(gateway).spec.volumes?.find((v) => v.name === 'data')?.emptyDir).toEqual({
      sizeLimit: '1Gi',
    });
    expect(only(off, 'HorizontalPodAutoscaler', 'flowloom-gateway').spec?.scaleTargetRef).toMatchObject({
      kind: 'Deployment',
    });
    const file = join(scratch, 'no-persistence.yaml');
    writeFileSync(file, off.map((m) => JSON.stringify(m)).join('\n---\n'));
    const validated = run(tools.FLOWLOOM_KUBERNETES_VALIDATE!, [
      '--strict',
      '--quiet',
      '-k',
      KUBE_VERSION,
      file,
    ]);
    expect(validated.status, validated.stdout + validated.stderr).toBe(0);
  });

  it('when a value is misspelled or weakens the pod security, then the values schema rejects it and names it', () => {
    const cases: [string[], string][] = [
      [['--set', 'gateway.replicaCuont=3'], 'replicaCuont'],
      [['--set', 'securityContext.readOnlyRootFilesystem=false'], 'readOnlyRootFilesystem'],
      [['--set', 'podSecurityContext.runAsNonRoot=false'], 'runAsNonRoot'],
      [['--set', 'securityContext.capabilities.add={NET_ADMIN}'], 'capabilities'],
      [['--set', 'securityContext.capabilities.drop={CHOWN}'], 'drop'],
      [['--set', 'podSecurityContext.seccompProfile.type=Unconfined'], 'seccompProfile'],
      [['--set', 'auth.adminKey=short'], 'adminKey'],
      [['--set', 'auth.policyServiceKey=short'], 'policyServiceKey'],
      [['--set', 'postgresql.url=mysql://x'], 'url'],
      [['--set', 'kafka.brokers={kafka}'], 'brokers'],
      [['--set', 'kafka.topics.replicationFactor=0'], 'replicationFactor'],
      [['--set', 'kafka.topics.prefix=flowloom.staging'], 'prefix'],
      [['--set', 'config.logLevel=loud'], 'logLevel'],
      [['--set', 'gateway.config.outboxOnDatabaseDown=spoool'], 'outboxOnDatabaseDown'],
      [['--set', 'gateway.persistence.sizee=2Gi'], 'sizee'],
      [['--set', 'gateway.persistence.accessModes={ReadWriteSometimes}'], 'accessModes'],
      [['--set', 'auditDbRole.name=Ledger-Writer'], 'auditDbRole'],
    ];
    for (const [args, key] of cases) {
      const result = helm(['template', 'flowloom', CHART, ...args]);
      expect(result.status, args.join(' ')).not.toBe(0);
      expect(result.stderr, args.join(' ')).toContain(key);
    }
  });

  it('when Kafka and Redis are configured, then the services get the brokers and the NetworkPolicy opens their ports', () => {
    const manifests = render([
      '--set',
      'kafka.brokers={kafka-0.kafka:9092,kafka-1.kafka:9092}',
      '--set-string',
      'redis.url=redis://cache.internal:6379',
    ]);
    const env = podTemplate(workload(manifests, 'flowloom-gateway')).spec.containers[0]!.env ?? [];
    expect(env).toContainEqual({
      name: 'FLOWLOOM_KAFKA_BROKERS',
      value: 'kafka-0.kafka:9092,kafka-1.kafka:9092',
    });
    const egress = (only(manifests, 'NetworkPolicy', 'flowloom-egress').spec as unknown as NetworkPolicySpec)
      .egress;
    const ports = (egress ?? []).flatMap((r) => r.ports ?? []);
    expect(ports).toContainEqual({ port: 9092, protocol: 'TCP' });
    expect(ports).toContainEqual({ port: 6379, protocol: 'TCP' });
  });

  it("when Kafka is configured, then each service's flowloom.yaml says how to create topics: by default one replica, for a single broker", () => {
    expect(only(defaults, 'ConfigMap', 'flowloom').data!['gateway.yaml']).not.toContain('kafkaTopics');
    const configMap = only(
      render(['--set', 'kafka.brokers={kafka:9092}', '--set', 'kafka.topics.partitions=4']),
      'ConfigMap',
      'flowloom',
    );
    for (const name of SERVICES) {
      const file = join(scratch, `kafka-${name}.yaml`);
      writeFileSync(file, configMap.data![`${name}.yaml`]!);
      const config = loadConfig({ env: { FLOWLOOM_CONFIG: file }, cwd: scratch });
      expect({ name, ...config.kafkaTopics }).toEqual({
        name,
        replicationFactor: 1,
        partitions: 4,
        prefix: 'flowloom',
      });
    }
  });
});

describe('helm/flowloom with values-production.yaml', () => {
  it('when rendered, then the gateway is highly available: an HPA from 3 pods, at most one per node, spread over zones, a PDB of 2', () => {
    const deployment = workload(production, 'flowloom-gateway');
    // The HPA owns the replica count.
    expect(deployment.spec).not.toHaveProperty('replicas');
    const hpa = only(production, 'HorizontalPodAutoscaler', 'flowloom-gateway');
    expect(hpa.spec?.minReplicas).toBe(3);
    expect(hpa.spec?.scaleTargetRef).toEqual({
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      name: 'flowloom-gateway',
    });
    expect(only(production, 'PodDisruptionBudget', 'flowloom-gateway').spec?.minAvailable).toBe(2);

    const pod = podTemplate(deployment);
    const antiAffinity = (
      pod.spec.affinity as {
        podAntiAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            topologyKey: string;
            labelSelector: { matchLabels: Record<string, string> };
          }[];
        };
      }
    ).podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]!;
    expect(antiAffinity.topologyKey).toBe('kubernetes.io/hostname');
    expect(matches(antiAffinity.labelSelector.matchLabels, pod.metadata.labels)).toBe(true);
    const spread = pod.spec.topologySpreadConstraints?.[0];
    expect(spread?.topologyKey).toBe('topology.kubernetes.io/zone');
    // A constraint given without a selector gets the gateway's own labels.
    expect(spread?.labelSelector?.matchLabels).toEqual({
      'app.kubernetes.io/name': 'flowloom',
      'app.kubernetes.io/instance': 'flowloom',
      'app.kubernetes.io/component': 'gateway',
    });
  });

  it('when an existing Secret is named, then the chart writes no Secret of its own and every pod loads that one', () => {
    expect(production.filter((m) => m.kind === 'Secret')).toEqual([]);
    for (const m of production.filter((x) => runsPods(x))) {
      expect(podTemplate(m).spec.containers[0]!.envFrom, m.metadata.name).toEqual([
        { secretRef: { name: 'flowloom-env' } },
      ]);
    }
  });

  it('when rendered, then both audit replicas sign with the key of the named Secret, required and read-only', () => {
    const audit = workload(production, 'flowloom-audit');
    expect(audit.spec?.replicas).toBe(2);
    const spec = auditPod(production);
    const volumes = spec.volumes as { name: string; secret?: { secretName: string } }[];
    expect(volumes.find((v) => v.name === 'audit-key-secret')?.secret?.secretName).toBe(
      'flowloom-audit-signing-key',
    );
    expect(spec.containers[0]!.env).toContainEqual({
      name: 'FLOWLOOM_AUDIT_SIGNING_KEY_MODE',
      value: 'provided',
    });
    expect(production.filter((m) => m.kind === 'Secret')).toEqual([]);
  });

  it('when rendered, then the Ingress routes to the gateway HTTP Service with TLS, and providers are reachable only on public addresses', () => {
    const ingress = only(production, 'Ingress', 'flowloom');
    const rules = ingress.spec?.rules as {
      host: string;
      http: { paths: { backend: { service: { name: string; port: { name: string } } } }[] };
    }[];
    expect(rules[0]!.http.paths[0]!.backend.service).toEqual({
      name: 'flowloom-gateway',
      port: { name: 'http' },
    });
    expect(ingress.spec?.tls).toEqual([{ hosts: ['ai-gateway.example.com'], secretName: 'ai-gateway-tls' }]);

    const gateway = only(production, 'NetworkPolicy', 'flowloom-gateway')
      .spec as unknown as NetworkPolicySpec;
    const providers = gateway.egress?.[0] as { to: { ipBlock: { cidr: string; except: string[] } }[] };
    expect(providers.to[0]!.ipBlock.cidr).toBe('0.0.0.0/0');
    expect(providers.to[0]!.ipBlock.except).toEqual(expect.arrayContaining(['10.0.0.0/8', '192.168.0.0/16']));
    const from = gateway.ingress?.[0]?.from ?? [];
    expect(from.length).toBeGreaterThan(1);
  });

  it('when rendered, then its flowloom.yaml (providers, aliases, routing, budgets) is accepted by the real config loader', () => {
    const file = join(scratch, 'production-gateway.yaml');
    writeFileSync(file, only(production, 'ConfigMap', 'flowloom').data!['gateway.yaml']!);
    // The provider keys come from the existing Secret at run time.
    const config = loadConfig({
      env: { FLOWLOOM_CONFIG: file, OPENAI_API_KEY: 'sk-test', ANTHROPIC_API_KEY: 'sk-ant-test' },
      cwd: scratch,
    });
    expect(Object.keys(config.providers).sort()).toEqual(['anthropic', 'openai']);
    expect(config.models.smart?.deployments.map((d) => d.provider)).toEqual(['openai', 'anthropic']);
    expect(config.providers.openai?.models).toEqual(['gpt-*', 'o3*', 'o4*', 'text-embedding-*']);
    expect(config.budgets).toEqual([{ scope: 'team', period: 'month', limitUsd: 5000 }]);
  });

  it('when rendered, then every service creates Kafka topics with 3 replicas (one broker may fail without losing events)', () => {
    const configMap = only(production, 'ConfigMap', 'flowloom');
    for (const name of SERVICES) {
      const file = join(scratch, `production-${name}.yaml`);
      writeFileSync(file, configMap.data![`${name}.yaml`]!);
      const config = loadConfig({
        env: { FLOWLOOM_CONFIG: file, OPENAI_API_KEY: 'sk-test', ANTHROPIC_API_KEY: 'sk-ant-test' },
        cwd: scratch,
      });
      expect({ name, ...config.kafkaTopics }).toEqual({
        name,
        replicationFactor: 3,
        partitions: 12,
        prefix: 'flowloom',
      });
    }
  });
});

interface ComposeService {
  image?: string;
  command?: string[];
  user?: string;
  read_only?: boolean;
  tmpfs?: string[];
  cap_drop?: string[];
  environment?: Record<string, string | null>;
  env_file?: { path: string }[];
  healthcheck?: { test?: string[]; disable?: boolean };
  depends_on?: Record<string, { condition: string }>;
  volumes?: { type: string; source: string; target: string }[];
  ports?: { host_ip?: string; target: number; published: string }[];
}

describe('docker-compose.yml', () => {
  const compose = (): { services: Record<string, ComposeService>; volumes?: Record<string, unknown> } =>
    JSON.parse(readFileSync(join(out, 'compose.json'), 'utf8'));

  it('when loaded as docker compose config does, then it has the engines, the migration and the three services, and none of the engines no service uses yet', () => {
    expect(Object.keys(compose().services).sort()).toEqual([
      'audit',
      'gateway',
      'kafka',
      'migrate',
      'policy',
      'postgres',
      'redis',
    ]);
  });

  it('when loaded, then each FlowLoom service runs `serve <name>` hardened, healthy on /readyz, after its engines and the migration', () => {
    const { services } = compose();
    for (const name of SERVICES) {
      const service = services[name]!;
      expect(service.command).toEqual(['serve', name]);
      expect(service.user).toBe('10001:10001');
      expect(service.read_only).toBe(true);
      expect(service.tmpfs?.[0]).toMatch(/^\/tmp(:|$)/);
      expect(service.cap_drop).toEqual(['ALL']);
      expect(service.healthcheck?.test?.join(' ')).toContain('/readyz');
      expect(service.depends_on).toEqual({
        postgres: expect.objectContaining({ condition: 'service_healthy' }),
        redis: expect.objectContaining({ condition: 'service_healthy' }),
        kafka: expect.objectContaining({ condition: 'service_healthy' }),
        migrate: expect.objectContaining({ condition: 'service_completed_successfully' }),
      });
      expect(service.volumes).toContainEqual(expect.objectContaining({ type: 'volume', target: '/data' }));
      expect(service.env_file?.map((f) => f.path.split('/').pop())).toEqual(['.env']);
      const env = service.environment ?? {};
      expect(env.FLOWLOOM_DATABASE_URL).toBe('postgres://flowloom:check-only@postgres:5432/flowloom');
      expect(env.FLOWLOOM_KAFKA_BROKERS).toBe('kafka:9092');
      expect(env.FLOWLOOM_REDIS_URL).toBe('redis://redis:6379');
      expect('FLOWLOOM_ADMIN_KEY' in env).toBe(true);
      // Every service's HTTP server is on 8080, where its health check looks.
      expect(env[name === 'audit' ? 'FLOWLOOM_AUDIT_HTTP_PORT' : 'FLOWLOOM_HTTP_PORT']).toBe('8080');
      for (const variable of Object.keys(env).filter((v) => v.startsWith('FLOWLOOM_'))) {
        expect(KNOWN_FLOWLOOM_VARIABLES.has(variable), `${name}: ${variable}`).toBe(true);
      }
    }
    expect(services.gateway?.environment?.FLOWLOOM_POLICY_SERVICE_URL).toBe('policy:50051');
    // One URL: the gateway forwards the policy and audit admin APIs to those services' HTTP ports.
    expect(services.gateway?.environment?.FLOWLOOM_POLICY_HTTP_URL).toBe('http://policy:8080');
    expect(services.gateway?.environment?.FLOWLOOM_AUDIT_HTTP_URL).toBe('http://audit:8080');
    expect(services.migrate?.command).toEqual(['migrate']);
    // The migration creates the audit ledger's role; the audit service runs its ledger under the same one.
    expect(services.migrate?.environment?.FLOWLOOM_AUDIT_DB_ROLE).toBe('flowloom_audit_writer');
    expect(services.audit?.environment?.FLOWLOOM_AUDIT_DB_ROLE).toBe('flowloom_audit_writer');
    // Only the gateway is published, and on loopback unless asked otherwise.
    expect(services.gateway?.ports?.map((p) => [p.host_ip, p.target])).toEqual([
      ['127.0.0.1', 8080],
      ['127.0.0.1', 50051],
    ]);
    expect(services.policy?.ports).toBeUndefined();
  });

  it('when loaded, then the engines have health checks and keep their data in volumes; Kafka is one KRaft node', () => {
    const { services } = compose();
    for (const [name, target] of [
      ['postgres', '/var/lib/postgresql/data'],
      ['redis', '/data'],
      ['kafka', '/var/lib/kafka/data'],
    ] as const) {
      expect(services[name]?.healthcheck?.test, name).toBeDefined();
      expect(services[name]?.volumes, name).toContainEqual(
        expect.objectContaining({ type: 'volume', target }),
      );
    }
    const kafka = services.kafka!;
    expect(kafka.image).toMatch(/^apache\/kafka:/);
    expect(kafka.environment?.KAFKA_PROCESS_ROLES).toBe('broker,controller');
    expect(kafka.environment?.KAFKA_ADVERTISED_LISTENERS).toBe('PLAINTEXT://kafka:9092');
  });

  it('when the compose file is broken, then the compose check rejects it (so its pass means something)', () => {
    const dir = join(scratch, 'broken-compose');
    const text = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8').replace(
      'condition: service_completed_successfully',
      'condition: service_finished',
    );
    run('mkdir', ['-p', dir]);
    writeFileSync(join(dir, 'docker-compose.yml'), text);
    writeFileSync(join(dir, '.env'), 'POSTGRES_PASSWORD=x\n');
    const result = run(tools.FLOWLOOM_COMPOSE_CHECK!, [
      '-f',
      join(dir, 'docker-compose.yml'),
      '-env-file',
      join(dir, '.env'),
    ]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('depends_on.migrate.condition value must be one of');
  });
});

describe('Dockerfile', () => {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));

  it('when read, then it builds with npm ci in its own stage and runs the CLI as a fixed non-root user', () => {
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:20-[a-z]+-slim$/m);
    expect(dockerfile.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(3);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    expect(runtime).toMatch(/^USER 10001:10001$/m);
    expect(runtime).toMatch(/^HEALTHCHECK .*\n?.*\/healthz/m);
    expect(runtime).toContain('ENTRYPOINT ["node", "services/flowloom/bin/flowloom.js"]');
    expect(runtime).toMatch(/^CMD \["up"\]$/m);
    // All of the deps stage's /app: npm nests a workspace's own node_modules when versions differ.
    expect(runtime).toMatch(/^COPY --from=deps \/app\/ \.\/$/m);
    expect(runtime).toMatch(/FLOWLOOM_DATA_DIR=\/data/);
    // The runtime stage takes files from the other stages only, never the whole build context.
    expect(runtime).not.toMatch(/^COPY (?!--from=)/m);
  });

  it('when building, then the context keeps every workspace manifest npm ci needs and leaves out node_modules and .git', () => {
    const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n');
    expect(ignore).toEqual(
      expect.arrayContaining(['**/node_modules', '.git', 'tests/*', '!tests/package.json']),
    );
    // Every workspace folder whose contents are ignored gets its package.json back, or npm ci fails.
    const workspaces = (
      JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { workspaces: string[] }
    ).workspaces;
    for (const dir of workspaces.filter((w) => !w.includes('*'))) {
      if (ignore.includes(`${dir}/*`) || ignore.includes(dir))
        expect(ignore).toContain(`!${dir}/package.json`);
    }
  });
});
