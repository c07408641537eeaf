// Compiled (never run) by test/types.test.mjs with `tsc --strict`: the declarations of the
// package and of its S3 helper describe the calls as the tests make them, and refuse what
// the addon refuses.
import * as isec from '../../lib/index'
import { IsecS3, type CopyResult, type MigrateResult, type PutObjectResult } from '../../lib/s3'
import { S3Client } from '@aws-sdk/client-s3'

export async function usage(kek: Uint8Array, meta: Record<string, string>): Promise<void> {
  const ring = new isec.Keyring()
  ring.addKek('kek-a', kek, 'active')
  const { envelope, key } = await ring.createEnvelope({ fitParts: { size: 2 ** 40, preferred: 8 << 20 } })
  const part: number | undefined | null = key.partSize
  const pairs: Array<[string, string]> = isec.objectMetadata({ owner: 'a' }, envelope)
  const user: Array<[string, string]> = isec.userMetadata(Object.fromEntries(pairs))
  const size: number = isec.metadataSize(user)
  const table: Buffer | null = isec.tableSource(meta)
  const sidecar: string = isec.sidecarKey('table', 'a/b')
  const cls = isec.classifyMetadata(meta)
  const env: isec.Envelope | undefined = cls.envelope
  const plan = isec.decideCopy({ sourceMetadata: meta, sourceSize: 10, limits: { metadataMax: 2048 } }, ring)
  const kind: 'table' | 'legacy' | null = plan.sidecar
  const planMeta: Array<[string, string]> | null = plan.metadata
  if (plan.sidecar !== null) isec.sidecarKey(plan.sidecar, 'k')
  void [part, size, table, sidecar, env, kind, planMeta]

  // Opening an object after its HEAD, and a plan's S3 requests.
  const open = new isec.ObjectOpen('k', meta, 10)
  let step: isec.OpenStep = open.next
  if (step.kind === 'fetch') step = open.feed(null)
  const legacy: isec.LegacyObject | undefined = step.legacy
  const format: 'isec' | 'legacy' | 'plaintext' | undefined = step.format
  const steps: isec.CopyStep[] = isec.copySteps(plan, { bucket: 'b', key: 'k' }, meta, { bucket: 'b', key: 'c' }, { newHeaders: true })
  const undo: string[] = steps.flatMap((q) => (q.undo ?? []).map((u) => u.op))
  void [legacy, format, undo]
  // @ts-expect-error: an object is { bucket, key }
  isec.copySteps(plan, 'b/k', meta, { bucket: 'b', key: 'c' })

  // Table entries carry each part's nonce prefix; re-encryption reports parts.
  const t = ring.createEnvelopeSync({ table: true })
  const enc = isec.Encryptor.forPart(t.key, 1, false)
  const body: Buffer = Buffer.concat([enc.update(Buffer.alloc(5)), enc.final()])
  const prefix: Buffer = enc.prefix
  const streamPrefix: Buffer = new isec.EncryptStream(t.key, { partNumber: 2 }).prefix
  const entries: Array<[number, number, Buffer]> = new isec.SegmentTable([[1, 5, prefix]]).entries
  const shape = isec.Shape.fromTable(t.key, new isec.SegmentTable([[1, 5, body.subarray(0, 7)]]).encode(t.key), body.length)
  const job = isec.ReencryptionJob.startIsec(ring, t.envelope, shape, { frameSize: 4096, partSize: 8 << 20 })
  const parts: [number, number, number] = [job.progress.partsDone, job.progress.partsTotal, job.targetPartLength]
  const done: number = isec.ReencryptionJob.parseCheckpoint(job.checkpoint()).partsDone
  void [entries, parts, done, streamPrefix]
  // @ts-expect-error: an entry needs its prefix
  new isec.SegmentTable([[1, 5]])
  // @ts-expect-error: progress counts parts, not frames
  void job.progress.framesDone

  // @ts-expect-error: a sidecar is 'table' or 'legacy'
  isec.sidecarKey('other', 'k')
  // @ts-expect-error: fitParts needs both sizes
  ring.createEnvelopeSync({ fitParts: { size: 10 } })
  // @ts-expect-error: metadata values are strings
  isec.objectMetadata({ n: 1 }, envelope)

  const s3 = new IsecS3(new S3Client({}), ring, { partSize: 8 << 20, copyLimits: { singleCopyMax: 1 << 20 } })
  const put: PutObjectResult = await s3.putObject({ Bucket: 'b', Key: 'k', Body: Buffer.alloc(1), Metadata: { a: 'b' } })
  const copy: CopyResult = await s3.copyObject({ SourceBucket: 'b', SourceKey: 'k', Bucket: 'b', Key: 'c' })
  const copied: 'table' | 'legacy' | null = copy.plan.sidecar
  const migrated: CopyResult = await s3.copyObject({ SourceBucket: 'b', SourceKey: 'k', Bucket: 'b', Key: 'm', migrateLegacy: true })
  const read = await s3.getObject({ Bucket: 'b', Key: 'k' })
  const head = await s3.headObject({ Bucket: 'b', Key: 'k' })
  const moved: MigrateResult = await s3.migrate('b', 'k')
  const deleted: string | null = moved.sidecarDeleted
  // @ts-expect-error: migrate takes a bucket and a key, not a params object
  await s3.migrate({ Bucket: 'b', Key: 'k' })
  ring.setDefaultLegacy('legacy')
  void [put.envelope.kid, copied, migrated.reason, read.format, head.legacyLayout, moved.migrated, deleted]
}
