// The example's backend: serves the page, signs S3 requests, and plays a toy KMS.
//
// The browser never holds S3 credentials or a KEK:
// - /api/create, /api/presign, /api/complete: CreateMultipartUpload (with the isec envelope as
//   user metadata), presigned part PUTs and GETs/HEADs, CompleteMultipartUpload;
// - /api/kms/wrap, /api/kms/unwrap: the KEK lives here; the page's keyring reaches it as an
//   external (async) key wrapper. A real deployment uses AWS KMS, Vault transit, ...
//
// S3 settings from the environment (scripts/garage.sh env): ISEC_S3_ENDPOINT,
// ISEC_S3_REGION, ISEC_S3_BUCKET, ISEC_S3_ACCESS_KEY_ID, ISEC_S3_SECRET_ACCESS_KEY.
//   node examples/upload/server.mjs    then open the URL it prints.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'

import { serve } from '../../test/browser/server.mjs'
import { presign } from './sigv4.mjs'

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

async function readJson(req) {
  const chunks = []
  for await (const c of req) chunks.push(c)
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}')
}

export async function startExample({ port = 0, s3 = s3FromEnv(), kmsKey = randomBytes(32) } = {}) {
  const creds = { endpoint: s3.endpoint, region: s3.region, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey }
  const bucket = s3.bucket
  const objectKey = (k) => {
    if (typeof k !== 'string' || !/^[\w.\-/]{1,200}$/.test(k)) throw new Error('bad key')
    return k
  }
  const api = {
    // CreateMultipartUpload with the envelope in user metadata.
    async '/api/create'(b) {
      const headers = {}
      for (const [k, v] of Object.entries(b.metadata ?? {})) headers[`x-amz-meta-${k}`] = v
      const url = presign(creds, { method: 'POST', bucket, key: objectKey(b.key), query: { uploads: '' }, headers })
      const r = await fetch(url, { method: 'POST', headers })
      const text = await r.text()
      if (!r.ok) throw new Error(`CreateMultipartUpload: ${r.status} ${text}`)
      return { uploadId: /<UploadId>([^<]+)<\/UploadId>/.exec(text)[1] }
    },
    async '/api/presign'(b) {
      const query = {}
      if (b.partNumber !== undefined) Object.assign(query, { partNumber: String(b.partNumber), uploadId: b.uploadId })
      if (!['GET', 'HEAD', 'PUT'].includes(b.method)) throw new Error('bad method')
      return { url: presign(creds, { method: b.method, bucket, key: objectKey(b.key), query }) }
    },
    async '/api/complete'(b) {
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
    // A toy KMS: AES-256-GCM under a key that never leaves this process.
    async '/api/kms/wrap'(b) {
      const iv = randomBytes(12)
      const c = createCipheriv('aes-256-gcm', kmsKey, iv)
      c.setAAD(Buffer.from(b.kid))
      const ct = Buffer.concat([c.update(Buffer.from(b.data, 'base64')), c.final()])
      return { data: Buffer.concat([iv, ct, c.getAuthTag()]).toString('base64') }
    },
    async '/api/kms/unwrap'(b) {
      const blob = Buffer.from(b.data, 'base64')
      const d = createDecipheriv('aes-256-gcm', kmsKey, blob.subarray(0, 12))
      d.setAAD(Buffer.from(b.kid))
      d.setAuthTag(blob.subarray(blob.length - 16))
      return { data: Buffer.concat([d.update(blob.subarray(12, blob.length - 16)), d.final()]).toString('base64') }
    },
  }
  return serve({
    port,
    async onRequest(req, res) {
      const path = new URL(req.url, 'http://x').pathname
      if (!(path in api)) return false
      try {
        json(res, 200, await api[path](await readJson(req)))
      } catch (e) {
        json(res, 500, { error: String(e.message ?? e) })
      }
      return true
    },
  })
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
  console.log(`open ${s.url}/examples/upload/`)
}
