import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fixedRate, type Target, throughput, timeToFirstByte } from './load.js';
import { type Child, freePort, startChild } from './processes.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ADMIN_KEY = 'flk_bench-admin-0123456789abcdefghijklmnopqrstuv';

export interface Figure {
  name: string;
  value: number;
  unit: string;
  note?: string;
}

const CHAT = JSON.stringify({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'Say hello in five words.' }],
});
const CHAT_STREAM = JSON.stringify({
  model: 'gpt-4o-mini',
  stream: true,
  stream_options: { include_usage: true },
  messages: [{ role: 'user', content: 'Say hello in five words.' }],
});

/**
 * The gateway side by side with the bare mock upstream and Portkey's open-source gateway, each in a
 * process of its own, under the same load generated from this process.
 */
export async function runGatewayBench(log: (line: string) => void, seconds = 10): Promise<Figure[]> {
  const children: Child[] = [];
  const dataDir = mkdtempSync(join(tmpdir(), 'flowloom-bench-'));
  try {
    const upstreamPort = await freePort();
    log(`starting the mock OpenAI upstream on ${upstreamPort}…`);
    children.push(
      await startChild(
        'node',
        ['--import', 'tsx', join(ROOT, 'tests/bench/mock-upstream.ts'), String(upstreamPort)],
        {},
        /listening/,
      ),
    );
    const upstreamBase = `http://127.0.0.1:${upstreamPort}/v1`;

    const [httpPort, grpcPort, portkeyPort] = [await freePort(), await freePort(), await freePort()];
    log('starting FlowLoom (keys, routing, metering and the durable outbox on; logs at warn)…');
    children.push(
      await startChild(
        'node',
        [join(ROOT, 'services/flowloom/bin/flowloom.js'), 'up'],
        {
          FLOWLOOM_HTTP_PORT: String(httpPort),
          FLOWLOOM_GRPC_PORT: String(grpcPort),
          FLOWLOOM_DATA_DIR: dataDir,
          FLOWLOOM_ADMIN_KEY: ADMIN_KEY,
          FLOWLOOM_LOG_LEVEL: 'warn',
          FLOWLOOM_CONFIG: undefined,
          OPENAI_API_KEY: 'sk-bench',
          OPENAI_BASE_URL: upstreamBase,
        },
        /FlowLoom is up/,
      ),
    );
    const created = await fetch(`http://127.0.0.1:${httpPort}/api/v1/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'bench', project: 'bench' }),
    });
    const { key } = (await created.json()) as { key: string };

    log(`starting Portkey's gateway (@portkey-ai/gateway) on ${portkeyPort}…`);
    children.push(
      await startChild(
        'node',
        [join(ROOT, 'node_modules/@portkey-ai/gateway/build/start-server.js'), `--port=${portkeyPort}`],
        {},
        /listening|running|Ready|http:\/\//i,
      ),
    );

    const json = { 'content-type': 'application/json' };
    const upstream: Target = {
      name: 'upstream',
      url: `${upstreamBase}/chat/completions`,
      headers: { ...json, authorization: 'Bearer sk-bench' },
      body: CHAT,
    };
    const flowloom: Target = {
      name: 'flowloom',
      url: `http://127.0.0.1:${httpPort}/v1/chat/completions`,
      headers: { ...json, authorization: `Bearer ${key}` },
      body: CHAT,
    };
    const portkey: Target = {
      name: 'portkey',
      url: `http://127.0.0.1:${portkeyPort}/v1/chat/completions`,
      headers: {
        ...json,
        authorization: 'Bearer sk-bench',
        'x-portkey-provider': 'openai',
        'x-portkey-custom-host': upstreamBase,
      },
      body: CHAT,
    };

    const check = await fetch(flowloom.url, { method: 'POST', headers: flowloom.headers, body: CHAT });
    if (check.status !== 200) throw new Error(`FlowLoom answered ${check.status}: ${await check.text()}`);
    const checkPortkey = await fetch(portkey.url, { method: 'POST', headers: portkey.headers, body: CHAT });
    const portkeyWorks = checkPortkey.status === 200;
    if (!portkeyWorks)
      log(
        `Portkey answered ${checkPortkey.status}: ${(await checkPortkey.text()).slice(0, 200)}; it is left out`,
      );

    const figures: Figure[] = [];
    const results: Record<string, Awaited<ReturnType<typeof throughput>>> = {};
    for (const target of portkeyWorks ? [upstream, flowloom, portkey] : [upstream, flowloom]) {
      log(`throughput, 32 connections, ${seconds} s: ${target.name}…`);
      await throughput(target, 32, 2);
      const r = await throughput(target, 32, seconds);
      results[target.name] = r;
      figures.push({
        name: `${target.name}: throughput (32 connections)`,
        value: Math.round(r.rps),
        unit: 'req/s',
        note: `p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, errors ${r.errors}, non-2xx ${r.non2xx}`,
      });
    }
    const up = results.upstream!;
    const fl = results.flowloom!;
    figures.push({
      name: 'ratio: FlowLoom / bare upstream throughput',
      value: Number((fl.rps / up.rps).toFixed(3)),
      unit: '×',
      note: 'target ≥ 0.35',
    });
    if (results.portkey) {
      figures.push({
        name: 'ratio: FlowLoom / Portkey throughput',
        value: Number((fl.rps / results.portkey.rps).toFixed(2)),
        unit: '×',
        note: 'target ≥ 10',
      });
    }

    log(`fixed rate 500 req/s for ${seconds} s: upstream alone, then through FlowLoom…`);
    await fixedRate(upstream, 500, 2);
    const direct = await fixedRate(upstream, 500, seconds);
    await fixedRate(flowloom, 500, 2);
    const via = await fixedRate(flowloom, 500, seconds);
    figures.push(
      {
        name: 'upstream alone at 500 req/s: p50 / p99',
        value: Math.round(direct.p50Us),
        unit: 'µs',
        note: `p99 ${Math.round(direct.p99Us)} µs, failed ${direct.failed}/${direct.sent}`,
      },
      {
        name: 'through FlowLoom at 500 req/s: p50 / p99',
        value: Math.round(via.p50Us),
        unit: 'µs',
        note: `p99 ${Math.round(via.p99Us)} µs, failed ${via.failed}/${via.sent}`,
      },
      {
        name: 'FlowLoom overhead at 500 req/s, p50',
        value: Math.round(via.p50Us - direct.p50Us),
        unit: 'µs',
        note: 'target ≤ 1000 µs',
      },
      {
        name: 'FlowLoom overhead at 500 req/s, p99',
        value: Math.round(via.p99Us - direct.p99Us),
        unit: 'µs',
        note: 'target ≤ 5000 µs',
      },
    );

    log('streaming time to first byte, 300 sequential requests each…');
    const streamUpstream = { ...upstream, body: CHAT_STREAM };
    const streamFlowloom = { ...flowloom, body: CHAT_STREAM };
    await timeToFirstByte(streamUpstream, 30);
    const ttfbDirect = await timeToFirstByte(streamUpstream, 300);
    await timeToFirstByte(streamFlowloom, 30);
    const ttfbVia = await timeToFirstByte(streamFlowloom, 300);
    figures.push(
      {
        name: 'stream TTFB, upstream alone p50',
        value: Math.round(ttfbDirect.p50Us),
        unit: 'µs',
        note: `p99 ${Math.round(ttfbDirect.p99Us)} µs`,
      },
      {
        name: 'stream TTFB, through FlowLoom p50',
        value: Math.round(ttfbVia.p50Us),
        unit: 'µs',
        note: `p99 ${Math.round(ttfbVia.p99Us)} µs`,
      },
      {
        name: 'stream TTFB overhead, p50',
        value: Math.round(ttfbVia.p50Us - ttfbDirect.p50Us),
        unit: 'µs',
        note: 'target ≤ 2000 µs',
      },
    );
    const rss = await fetch(`http://127.0.0.1:${httpPort}/metrics`).then((r) => r.text());
    const match = /flowloom_process_resident_memory_bytes (\d+)/.exec(rss);
    if (match)
      figures.push({
        name: 'FlowLoom RSS after the run',
        value: Math.round(Number(match[1]) / 1e6),
        unit: 'MB',
      });
    return figures;
  } finally {
    for (const child of children.reverse()) await child.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
