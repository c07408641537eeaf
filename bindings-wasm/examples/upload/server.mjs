// The example's backend: serves the page and signs S3 requests. It holds the recipient's
// private key and never lends it out.
//
// The browser holds neither S3 credentials nor any key that decrypts:
// - GET /api/recipient: the recipient's kid and PUBLIC key (`isec-x25519-public:...`). The
//   page's keyring holds only that, so it encrypts and uploads but can never read back
//   (`public_key_only`), even its own uploads;
// - /api/create, /api/presign, /api/complete: CreateMultipartUpload (with the isec envelope as
//   user metadata), presigned part PUTs and GETs/HEADs, CompleteMultipartUpload.
// No endpoint wraps, unwraps or hands out key material; every other /api/ path is 404.
//
// The private key lives in a keyring file (SPEC.md §10.3) outside the repository, whose
// directories this server serves: loaded when it exists, else generated at start and
// written there (mode 0600). Services that read the uploads load the same file
// (read_back.py). A real deployment keeps it in an HSM or KMS, never on the web server.
//
// S3 settings from the environment (scripts/garage.sh env): ISEC_S3_ENDPOINT,
// ISEC_S3_REGION, ISEC_S3_BUCKET, ISEC_S3_ACCESS_KEY_ID, ISEC_S3_SECRET_ACCESS_KEY; the
// keyring file from ISEC_EXAMPLE_KEYRING (default: isec-upload-example.keyring.json in the
// system's temporary directory).
//   node examples/upload/server.mjs    then open the URL it prints.
import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { serve } from '../../test/browser/server.mjs'
import { Keyring, generateRecipient } from '../../node.mjs'
import { presign } from './sigv4.mjs'

/** The repository: the example's server serves directories of it (test/browser/server.mjs). */
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

async function readJson(req) {
  const chunks = []
  for await (const c of req) chunks.push(c)
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}')
}

/**
 * The recipient from `keyringFile`: its active private key, or a new one written there.
 * Resolves to `{ kid, publicKey }`; the private key stays in the file.
 */
export async function recipient(keyringFile, kid = 'upload-recipient') {
  const file = path.resolve(keyringFile)
  // The server serves directories of the repository: a keyring file there could be served too.
  if (file.startsWith(repo + path.sep)) throw new Error(`${file}: keep the keyring file outside ${repo}`)
  if (existsSync(file)) {
    const k = Keyring.fromFileText(await readFile(file, 'utf8')).keys().find((k) => k.kind === 'private_key' && k.state === 'active')
    if (!k) throw new Error(`${file}: no active private key`)
    return { kid: k.kid, publicKey: k.publicKey }
  }
  const { privateKey, publicKey } = generateRecipient()
  const text = JSON.stringify({ keys: [{ kid, private_key: privateKey, state: 'active', created: new Date().toISOString() }] }, null, 2)
  await writeFile(file, text + '\n', { mode: 0o600, flag: 'wx' })
  return { kid, publicKey }
}

export async function startExample({
  port = 0,
  s3 = s3FromEnv(),
  keyringFile = process.env.ISEC_EXAMPLE_KEYRING ?? path.join(os.tmpdir(), 'isec-upload-example.keyring.json'),
} = {}) {
  const creds = { endpoint: s3.endpoint, region: s3.region, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey }
  const bucket = s3.bucket
  const rcpt = await recipient(keyringFile)
  const objectKey = (k) => {
    if (typeof k !== 'string' || !/^[\w.\-/]{1,200}$/.test(k)) throw new Error('bad key')
    return k
  }
  const api = {
    // The public key only: what the page encrypts to.
    async 'GET /api/recipient'() {
      return { kid: rcpt.kid, publicKey: rcpt.publicKey }
    },
    // CreateMultipartUpload with the envelope in user metadata.
    async 'POST /api/create'(b) {
      const headers = {}
      for (const [k, v] of Object.entries(b.metadata ?? {})) headers[`x-amz-meta-${k}`] = v
      const url = presign(creds, { method: 'POST', bucket, key: objectKey(b.key), query: { uploads: '' }, headers })
      const r = await fetch(url, { method: 'POST', headers })
      const text = await r.text()
      if (!r.ok) throw new Error(`CreateMultipartUpload: ${r.status} ${text}`)
      return { uploadId: /<UploadId>([^<]+)<\/UploadId>/.exec(text)[1] }
    },
    async 'POST /api/presign'(b) {
      const query = {}
      if (b.partNumber !== undefined) Object.assign(query, { partNumber: String(b.partNumber), uploadId: b.uploadId })
      if (!['GET', 'HEAD', 'PUT'].includes(b.method)) throw new Error('bad method')
      return { url: presign(creds, { method: b.method, bucket, key: objectKey(b.key), query }) }
    },
    async 'POST /api/complete'(b) {
      const body =
        '<CompleteMultipartUpload>' +
        b.parts.map((p) => `<Part><PartNumber>${p.partNumber}</PartNumber><ETag>${p.etag}</ETag></Part>`).join('') +
        '</CompleteMultipartUpload>'
      const url = presign(creds, { method: 'POST', bucket, key: objectKey(b.key), query: { uploadId: b.uploadId } })
      const r = await fetch(url, { method: 'POST', body })
      const text = await r.text()
      if (!r.ok || text.includes('<Error>')) throw new Error(`CompleteMultipartUpload: ${r.status} ${text}`)
      return { ok: true }
    },
  }
  const server = await serve({
    port,
    async onRequest(req, res) {
      const { pathname } = new URL(req.url, 'http://x')
      if (!pathname.startsWith('/api/')) return false
      const route = api[`${req.method} ${pathname}`]
      if (!route) {
        json(res, 404, { error: `no ${req.method} ${pathname}` })
        return true
      }
      try {
        json(res, 200, await route(req.method === 'POST' ? await readJson(req) : {}))
      } catch (e) {
        json(res, 500, { error: String(e.message ?? e) })
      }
      return true
    },
  })
  return { ...server, recipient: rcpt, keyringFile: path.resolve(keyringFile) }
}

export function s3FromEnv(env = process.env) {
  const need = (k) => {
    if (!env[k]) throw new Error(`${k} is not set (eval "$(scripts/garage.sh env --export)")`)
    return env[k]
  }
  return {
    endpoint: need('ISEC_S3_ENDPOINT'),
    region: env.ISEC_S3_REGION ?? 'garage',
    bucket: need('ISEC_S3_BUCKET'),
    accessKeyId: need('ISEC_S3_ACCESS_KEY_ID'),
    secretAccessKey: need('ISEC_S3_SECRET_ACCESS_KEY'),
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const s = await startExample({ port: Number(process.env.PORT ?? 8788) })
  console.log(`recipient ${s.recipient.kid}: ${s.recipient.publicKey} (private key in ${s.keyringFile})`)
  console.log(`open ${s.url}/examples/upload/`)
}
