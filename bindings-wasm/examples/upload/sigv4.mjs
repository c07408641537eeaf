// AWS Signature Version 4 query presigning (path-style URLs), for the example's signer.
// The browser only ever sees presigned URLs; the credentials stay in this server.
import { createHash, createHmac } from 'node:crypto'

const enc = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())
const sha256hex = (s) => createHash('sha256').update(s).digest('hex')
const hmac = (k, s) => createHmac('sha256', k).update(s).digest()

/**
 * A presigned URL for `method` on `/{bucket}/{key}` with `query` parameters. `headers` (e.g.
 * x-amz-meta-*) are signed and must be sent exactly as given.
 */
export function presign({ endpoint, region, accessKeyId, secretAccessKey }, { method, bucket, key, query = {}, headers = {}, expires = 900, now = new Date() }) {
  const url = new URL(endpoint)
  const amzDate = now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '')
  const date = amzDate.slice(0, 8)
  const scope = `${date}/${region}/s3/aws4_request`
  const path = `/${enc(bucket)}/${key.split('/').map(enc).join('/')}`
  const hdrs = { host: url.host, ...Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), String(v).trim()])) }
  const signedHeaders = Object.keys(hdrs).sort().join(';')
  const q = {
    ...query,
    'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
    'X-Amz-Credential': `${accessKeyId}/${scope}`,
    'X-Amz-Date': amzDate,
    'X-Amz-Expires': String(expires),
    'X-Amz-SignedHeaders': signedHeaders,
  }
  const canonicalQuery = Object.keys(q).sort().map((k) => `${enc(k)}=${enc(q[k])}`).join('&')
  const canonicalHeaders = Object.keys(hdrs).sort().map((k) => `${k}:${hdrs[k]}\n`).join('')
  const canonical = [method, path, canonicalQuery, canonicalHeaders, signedHeaders, 'UNSIGNED-PAYLOAD'].join('\n')
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256hex(canonical)].join('\n')
  let k = hmac('AWS4' + secretAccessKey, date)
  k = hmac(k, region)
  k = hmac(k, 's3')
  k = hmac(k, 'aws4_request')
  const signature = createHmac('sha256', k).update(toSign).digest('hex')
  return `${url.origin}${path}?${canonicalQuery}&X-Amz-Signature=${signature}`
}
