// Public-key recipients against KEKs in @isec/wasm: envelope creation and opening per second
// (AES-KWP vs HPKE-X25519) and the envelope's metadata text length, under Node (the nodejs
// build) and in headless Chromium (the web build). Not a test:
//   bash bindings-wasm/scripts/build.sh          # or scripts/test-wasm.sh
//   node benches/wasm/recipients.mjs [--rounds 5 --ms 400] [--no-browser]
// Creation includes what every create does (a fresh DEK and salt, the commitment and key
// derivation); the difference between the rows is the wrap: AES-KWP under the KEK, or an
// X25519 ephemeral key pair, one X25519 agreement, the HPKE key schedule and an AES-GCM seal (HPKE base mode). Opening
// likewise differs by the unwrap (one X25519 and the HPKE key schedule for HPKE).
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { measure } from './recipients.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const pkg = path.resolve(here, '../../bindings-wasm')
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? Number(process.argv[i + 1]) : dflt
}
const opts = { rounds: arg('rounds', 5), ms: arg('ms', 400) }

const results = {}
const isec = await (await import(path.join(pkg, 'node.mjs'))).default()
results[`Node ${process.version}`] = measure(isec, opts)

if (!process.argv.includes('--no-browser')) {
  const { serve } = await import(path.join(pkg, 'test/browser/server.mjs'))
  const { launch } = await import(path.join(pkg, 'test/browser/chromium.js'))
  const server = await serve()
  const browser = await launch()
  try {
    const page = await browser.context.newPage()
    // Any page of the server's origin, so the page imports the package from it.
    await page.goto(`${server.url}/benches/recipients.js`)
    const r = await page.evaluate(async (opts) => {
      const { default: init } = await import('/index.js')
      const { measure } = await import('/benches/recipients.js')
      return { ua: navigator.userAgent, out: measure(await init(), opts) }
    }, opts)
    results[(/HeadlessChrome\/[\d]+/.exec(r.ua) ?? ['Chromium'])[0]] = r.out
  } finally {
    await browser.close()
    await server.close()
  }
}

const load = os.loadavg()[0].toFixed(1)
console.log(`${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), load average ${load}; best of ${opts.rounds} rounds of ${opts.ms} ms`)
console.log('| runtime | wrap | create / s | open / s | envelope text (chars) | envelope (bytes) |')
console.log('|---|---|---:|---:|---:|---:|')
for (const [rt, r] of Object.entries(results)) {
  for (const [alg, x] of Object.entries(r)) {
    console.log(`| ${rt} | ${alg} | ${Math.round(x.create).toLocaleString('en')} | ${Math.round(x.open).toLocaleString('en')} | ${x.textLength} | ${x.binaryLength} |`)
  }
}
