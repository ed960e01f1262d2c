// A small upload-artifact action on GitHub's own client: every file under `path` as the artifact `name`.
import * as core from '@actions/core'
import {DefaultArtifactClient} from '@actions/artifact'
import fs from 'node:fs'
import path from 'node:path'

function filesUnder(folder) {
  return fs.readdirSync(folder, {withFileTypes: true}).flatMap(entry => {
    const full = path.join(folder, entry.name)
    return entry.isDirectory() ? filesUnder(full) : [full]
  })
}

async function main() {
  const name = core.getInput('name') || 'artifact'
  const root = path.resolve(process.env.GITHUB_WORKSPACE, core.getInput('path', {required: true}))
  const days = Number(core.getInput('retention-days')) || undefined
  const client = new DefaultArtifactClient()
  const uploaded = await client.uploadArtifact(name, filesUnder(root), root, {retentionDays: days})
  core.setOutput('artifact-id', String(uploaded.id))
  core.setOutput('artifact-digest', uploaded.digest)
}

main().catch(error => core.setFailed(error.message))
