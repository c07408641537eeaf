// Where the time of one benchmark case goes: runs it in headless Chromium under the
// DevTools CPU profiler and prints MB/s per run and self time per function (main thread).
// Not a test:
//   node profile.mjs <case> [frame]     case: enc | dec | encs | decs | raw (default 65536)
// `enc`/`dec`: isec one-shot (WebCrypto backend), `encs`/`decs`: EncryptStream /
// DecryptStream over a Blob, `raw`: crypto.subtle.encrypt per frame, awaited in turn.
// WebCrypto's AES runs on another thread: "encrypt"/"decrypt" here is the main thread's
// part of each call (copying the input), Uint8Array.set ("__wbg_set_...") is copying
// results into one array.
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const pkg = path.resolve(here, '../../bindings-wasm')
const { serve } = await import(path.join(pkg, 'test/browser/server.mjs'))
const { launch } = await import(path.join(pkg, 'test/browser/chromium.js'))

const which = process.argv[2] ?? 'enc'
const frame = Number(process.argv[3] ?? 65536)
const MIB = 64
const tasks = {
  enc: 'await isec.encrypt(key, data)',
  dec: 'await isec.decrypt(key, ct)',
  encs: 'await dataBlob.stream().pipeThrough(new isec.EncryptStream(key)).pipeTo(new WritableStream({}))',
  decs: 'await ctBlob.stream().pipeThrough(new isec.DecryptStream(key)).pipeTo(new WritableStream({}))',
  raw: `{ const iv = new Uint8Array(12); for (let at = 0; at < data.length; at += ${frame}) await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, rawKey, data.subarray(at, at + ${frame})) }`,
}
if (!(which in tasks)) throw new Error(`case: one of ${Object.keys(tasks).join(', ')}`)

const server = await serve()
const browser = await launch()
try {
  const page = await browser.context.newPage()
  await page.goto(`${server.url}/benches/profile.html`)
  await page.waitForFunction(() => window.isec !== undefined)
  await page.evaluate(
    async ([frame, mib]) => {
      const random = (n) => {
        const b = new Uint8Array(n)
        for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(n, i + 65536)))
        return b
      }
      const ring = new window.isec.Keyring()
      ring.addKek('k', random(32))
      window.key = ring.createEnvelopeSync({ frameSize: frame }).key
      window.data = random(mib << 20)
      window.ct = await window.isec.encrypt(window.key, window.data)
      window.dataBlob = new Blob([window.data])
      window.ctBlob = new Blob([window.ct])
      window.rawKey = await crypto.subtle.importKey('raw', random(32), 'AES-GCM', false, ['encrypt'])
    },
    [frame, MIB],
  )
  const cdp = await browser.context.newCDPSession(page)
  await cdp.send('Profiler.enable')
  await cdp.send('Profiler.setSamplingInterval', { interval: 100 })
  await cdp.send('Profiler.start')
  const times = []
  for (let i = 0; i < 5; i++) {
    times.push(await page.evaluate(`(async () => { const t = performance.now(); ${tasks[which]}; return performance.now() - t })()`))
  }
  const { profile } = await cdp.send('Profiler.stop')
  console.log(`${which}, ${frame}-byte frames, ${MIB} MiB: ${times.map((t) => `${((MIB * 1.048576) / (t / 1000)).toFixed(0)} MB/s`).join(', ')}`)
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const dt = (profile.endTime - profile.startTime) / profile.samples.length / 1000
  const self = new Map()
  for (const id of profile.samples) {
    const { functionName, url, lineNumber } = byId.get(id).callFrame
    const name = `${functionName || '(anonymous)'} ${url.split('/').pop()}:${lineNumber}`
    self.set(name, (self.get(name) ?? 0) + dt)
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0)
  console.log(`sampled ${total.toFixed(0)} ms`)
  for (const [name, ms] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 15)) {
    console.log(`${ms.toFixed(1).padStart(9)} ms ${((100 * ms) / total).toFixed(1).padStart(5)}%  ${name}`)
  }
} finally {
  await browser.close()
  await server.close()
}
