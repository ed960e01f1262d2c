// A small download-artifact action on GitHub's own client: the artifact `name` (every one when not given)
// into `path`, its digest checked.
import * as core from '@actions/core'
import {DefaultArtifactClient} from '@actions/artifact'
import path from 'node:path'

async function main() {
  const name = core.getInput('name')
  const target = path.resolve(process.env.GITHUB_WORKSPACE, core.getInput('path') || '.')
  const client = new DefaultArtifactClient()
  const artifacts = name ? [(await client.getArtifact(name)).artifact] : (await client.listArtifacts()).artifacts
  for (const artifact of artifacts) {
    const folder = name ? target : path.join(target, artifact.name)
    const {digestMismatch} = await client.downloadArtifact(artifact.id, {path: folder, expectedHash: artifact.digest})
    if (digestMismatch) throw new Error(`the digest of artifact '${artifact.name}' does not match`)
    core.info(`downloaded ${artifact.name} (${artifact.size} bytes) into ${folder}`)
  }
  core.setOutput('download-path', target)
}

main().catch(error => core.setFailed(error.message))
