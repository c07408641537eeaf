// IsecS3 (@isec/node/s3) against the plain AWS SDK v3 on a real S3 server, in one process.
//
// Not a test: prints a Markdown table of median MB/s (plaintext bytes per second) per
// operation for isec and for the plain SDK, and the ratio isec/plain, then the peak RSS of
// a 1 GiB put and get through isec, each in a child process (VmHWM), against the budget
// (concurrency + 2) parts + 32 MiB.
//
//   put          IsecS3.putObject(Buffer)          vs  @aws-sdk/lib-storage Upload (same
//                                                      partSize, queueSize = concurrency)
//   get          IsecS3.getObject (whole Buffer)   vs  GetObjectCommand, body streamed and
//                                                      consumed fully
//   get stream   IsecS3.getObjectStream, consumed  vs  the same plain streamed GetObject
//   range 1 MiB  IsecS3.getRange                   vs  ranged GetObjectCommand, collected
//
// Both sides use the same part size and concurrency (IsecS3: partSize, concurrency). The
// repetitions alternate isec and plain (which goes first flips every repetition). Every
// repetition puts new bytes: Garage deduplicates blocks by content, and a plain re-upload
// of the same bytes would skip its disk writes (isec's ciphertext is new every time).
//
// Needs bindings-node built (napi build) with @aws-sdk/client-s3 and @aws-sdk/lib-storage in
// bindings-node/node_modules; both modules are loaded from there, so the helper and the
// baseline share one SDK. Environment: ISEC_S3_ENDPOINT, ISEC_S3_REGION,
// ISEC_S3_ACCESS_KEY_ID, ISEC_S3_SECRET_ACCESS_KEY, ISEC_S3_BUCKET
// (scripts/garage.sh env --export). Knobs: ISEC_BENCH_MIB (96), ISEC_BENCH_PART_MIB (8),
// ISEC_BENCH_REPS (5), ISEC_BENCH_CONC ("1,4"), ISEC_BENCH_RSS_MIB (1024; 0 skips the RSS
// children), ISEC_BENCH_RANGES (32 ranged reads per range sample), ISEC_BENCH_OPS (all; a comma-separated subset of the operation names, e.g.
// "put,range 1 MiB"; the put always runs once to create the objects).
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs'
import { createRequire } from 'node:module'
import { loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const require = createRequire(join(here, '..', '..', 'bindings-node', 'package.json'))
const { Keyring } = require('./lib/index.js')
const { IsecS3 } = require('./lib/s3.js')
const { S3Client, GetObjectCommand } = require('@aws-sdk/client-s3')
const { Upload } = require('@aws-sdk/lib-storage')

const MiB = 1 << 20
const env = process.env
const SIZE = Number(env.ISEC_BENCH_MIB || 96) * MiB
const PART = Number(env.ISEC_BENCH_PART_MIB || 8) * MiB
const REPS = Number(env.ISEC_BENCH_REPS || 5)
const CONCS = (env.ISEC_BENCH_CONC || '1,4').split(',').map(Number)
const RSS_MIB = Number(env.ISEC_BENCH_RSS_MIB ?? 1024)
const OPS = env.ISEC_BENCH_OPS ? env.ISEC_BENCH_OPS.split(',') : null // e.g. "put,range 1 MiB"
const RANGES = Number(env.ISEC_BENCH_RANGES || 32) // 1 MiB ranges per timed range sample
const Bucket = env.ISEC_S3_BUCKET || 'isec-test'

function client() {
  return new S3Client({
    endpoint: env.ISEC_S3_ENDPOINT,
    region: env.ISEC_S3_REGION || 'garage',
    forcePathStyle: true,
    credentials: { accessKeyId: env.ISEC_S3_ACCESS_KEY_ID, secretAccessKey: env.ISEC_S3_SECRET_ACCESS_KEY },
  })
}

function keyring() {
  const ring = new Keyring()
  // A fixed KEK: the RSS children read what another child wrote.
  ring.addKek('bench', Buffer.from(Array.from({ length: 32 }, (_, i) => i)))
  return ring
}

async function timed(fn) {
  const t = process.hrtime.bigint()
  await fn()
  return Number(process.hrtime.bigint() - t) / 1e9
}

async function drain(stream) {
  let n = 0
  for await (const c of stream) n += c.length
  return n
}

/** Makes every 64 KiB of `buf` new (a random stamp at its start), so no storage block repeats. */
function fresh(buf) {
  const stamp = randomBytes(16)
  for (let o = 0; o < buf.length; o += 65536) stamp.copy(buf, o)
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

async function childRss(op, conc) {
  const s3 = client()
  const isec = new IsecS3(s3, keyring(), { partSize: PART, concurrency: conc })
  const Key = `bench-node/rss-${conc}`
  const size = RSS_MIB * MiB
  let base = process.memoryUsage().rss
  let t
  if (op === 'put') {
    // A file of known size on disk (page cache is not RSS), given as a path.
    const path = join(env.ISEC_BENCH_TMP || tmpdir(), `isec-bench-${process.pid}`)
    const block = randomBytes(PART)
    const fd = openSync(path, 'w')
    try {
      for (let left = size; left > 0; left -= PART) writeSync(fd, block, 0, Math.min(PART, left))
      closeSync(fd)
      base = process.memoryUsage().rss
      t = await timed(() => isec.putObject({ Bucket, Key, Body: path }))
    } finally {
      rmSync(path, { force: true })
    }
  } else if (op === 'plain-get') {
    // The SDK alone, for reference: the same stored object drained as it arrives.
    t = await timed(async () => {
      const { Body } = await s3.send(new GetObjectCommand({ Bucket, Key }))
      if ((await drain(Body)) < size) throw new Error('short get')
    })
  } else {
    t = await timed(async () => {
      const { Body } = await isec.getObjectStream({ Bucket, Key })
      const n = await drain(Body)
      if (n !== size) throw new Error(`got ${n}`)
    })
  }
  // VmHWM, not process.resourceUsage().maxRSS: Linux carries ru_maxrss across execve, so a
  // child would report the (larger) peak of the parent it was forked from.
  const peak = Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024
  console.log(`${base} ${peak} ${(size / t / 1e6).toFixed(1)}`)
}

/** A row of the RSS table; `budgeted: false` for the plain SDK's reference row. */
function rssRow(op, conc, budgeted = true) {
  const out = execFileSync(process.execPath, ['--no-warnings', fileURLToPath(import.meta.url), '--rss', op, String(conc)], {
    encoding: 'utf8',
  })
  const [base, peak, mbs] = out.trim().split(/\s+/).map(Number)
  const budget = (conc + 2) * PART + 32 * MiB
  const over = peak - base
  const name = budgeted ? `${op} ${RSS_MIB} MiB, concurrency ${conc}` : `${op} ${RSS_MIB} MiB (the SDK alone, for reference)`
  const verdict = budgeted ? `${(budget / MiB).toFixed(0)} | ${over <= budget ? 'yes' : 'no'}` : '- | -'
  return (
    `| ${name} | ${(peak / MiB).toFixed(0)} | ${(base / MiB).toFixed(0)} | ` +
    `${(over / MiB).toFixed(0)} | ${verdict} | ${mbs.toFixed(0)} |`
  )
}

async function main() {
  const s3 = client()
  const ring = keyring()
  const data = randomBytes(SIZE)
  const rows = []
  const load = []
  for (const conc of CONCS) {
    const isec = new IsecS3(s3, ring, { partSize: PART, concurrency: conc })
    const ik = `bench-node/isec-${conc}`
    const pk = `bench-node/plain-${conc}`
    const offsets = Array.from({ length: RANGES }, (_, i) =>
      Math.min(Math.floor((i * (SIZE - MiB)) / (RANGES - 1) / 4096) * 4096 + 12345, SIZE - MiB),
    )
    const ops = [
      [
        'put',
        SIZE,
        () => isec.putObject({ Bucket, Key: ik, Body: data }),
        () =>
          new Upload({ client: s3, params: { Bucket, Key: pk, Body: data }, partSize: PART, queueSize: conc }).done(),
      ],
      [
        'get',
        SIZE,
        async () => {
          const { Body } = await isec.getObject({ Bucket, Key: ik })
          if (Body.length !== SIZE) throw new Error('short get')
        },
        async () => {
          const r = await s3.send(new GetObjectCommand({ Bucket, Key: pk }))
          if ((await drain(r.Body)) !== SIZE) throw new Error('short get')
        },
      ],
      [
        'get stream',
        SIZE,
        async () => {
          const { Body } = await isec.getObjectStream({ Bucket, Key: ik })
          if ((await drain(Body)) !== SIZE) throw new Error('short get')
        },
        async () => {
          const r = await s3.send(new GetObjectCommand({ Bucket, Key: pk }))
          if ((await drain(r.Body)) !== SIZE) throw new Error('short get')
        },
      ],
      [
        'range 1 MiB',
        RANGES * MiB,
        async () => {
          for (const o of offsets) {
            const { Body } = await isec.getRange({ Bucket, Key: ik, start: o, end: o + MiB })
            if (!Body.equals(data.subarray(o, o + MiB))) throw new Error('range mismatch')
          }
        },
        async () => {
          for (const o of offsets) {
            const r = await s3.send(new GetObjectCommand({ Bucket, Key: pk, Range: `bytes=${o}-${o + MiB - 1}` }))
            const b = await r.Body.transformToByteArray()
            if (b.length !== MiB) throw new Error('short range')
          }
        },
      ],
    ]
    if (OPS) for (let i = ops.length - 1; i > 0; i--) if (!OPS.includes(ops[i][0])) ops.splice(i, 1)
    // Warm-up: creates both objects, opens connections.
    await ops[0][2]()
    await ops[0][3]()
    const whole = await isec.getObject({ Bucket, Key: ik })
    if (!whole.Body.equals(data)) throw new Error('round trip mismatch')
    const samples = new Map()
    for (let rep = 0; rep < REPS; rep++) {
      // New bytes for every repetition's puts: Garage stores blocks by content hash, so a
      // plain upload of bytes it already holds writes nothing (isec's ciphertext is always new).
      if (!OPS || OPS.includes('put')) fresh(data)
      for (const [name, bytes, fi, fp] of ops) {
        if (OPS && !OPS.includes(name)) continue
        const order = [
          ['isec', fi],
          ['plain', fp],
        ]
        if (rep % 2) order.reverse()
        for (const [side, fn] of order) {
          const k = `${name}/${side}`
          if (!samples.has(k)) samples.set(k, [])
          samples.get(k).push(bytes / (await timed(fn)) / 1e6)
        }
      }
      load.push(loadavg()[0])
    }
    for (const [name] of ops) {
      if (OPS && !OPS.includes(name)) continue
      const i = median(samples.get(`${name}/isec`))
      const p = median(samples.get(`${name}/plain`))
      rows.push(
        `| ${name} | ${conc} | ${i.toFixed(0)} | ${p.toFixed(0)} | ${(i / p).toFixed(2)} | ${i / p >= 0.95 ? 'yes' : 'no'} |`,
      )
    }
  }
  const sdk = require('@aws-sdk/client-s3/package.json').version
  console.log(`object ${SIZE / MiB} MiB, parts ${PART / MiB} MiB, ${REPS} alternating repetitions, median MB/s`)
  console.log(`(range: ${RANGES} ranged reads of 1 MiB per sample); node ${process.version}, @aws-sdk/client-s3 ${sdk}`)
  console.log()
  console.log('| operation | concurrency | isec MB/s | plain MB/s | isec/plain | >= 0.95 |')
  console.log('|---|---|---|---|---|---|')
  console.log(rows.join('\n'))
  console.log()
  console.log(
    `load average (1 min) during the repetitions: min ${Math.min(...load).toFixed(2)}, max ${Math.max(...load).toFixed(2)}`,
  )
  if (RSS_MIB) {
    console.log()
    console.log('| isec, child process | peak RSS MiB | RSS before MiB | peak - before MiB | budget MiB | within | MB/s |')
    console.log('|---|---|---|---|---|---|---|')
    for (const conc of CONCS) {
      console.log(rssRow('put', conc))
      console.log(rssRow('get', conc))
    }
    console.log(rssRow('plain-get', CONCS[0], false))
    console.log(`load average (1 min) after the RSS children: ${loadavg()[0].toFixed(2)}`)
  }
}

const argv = process.argv.slice(2)
if (argv[0] === '--rss') await childRss(argv[1], Number(argv[2]))
else await main()
