// Upload a file with tus-js-client (the official tus JavaScript client) as a browser app would:
// chunked, with the bearer token and X-Tenant-Id as headers. With --resume, the first client stops after
// its first chunk and a second one, given only the upload URL, asks HEAD where to go on and finishes.
// Prints {"url", "firstChunkOffset", "resumedFrom"} as JSON on success; exits 1 with the error otherwise.
import fs from "node:fs";
import path from "node:path";
import { Upload } from "tus-js-client";

const [endpoint, file, token, tenant, chunkSize, mode] = process.argv.slice(2);
const size = fs.statSync(file).size;
const options = {
  endpoint,
  chunkSize: Number(chunkSize),
  uploadSize: size,
  headers: { Authorization: `Bearer ${token}`, "X-Tenant-Id": tenant },
  metadata: { filename: path.basename(file), filetype: "text/csv" },
  retryDelays: [0, 500, 1000],
};

function fail(error) {
  console.error(String(error));
  process.exit(1);
}

function run(extra) {
  return new Promise((resolve) => {
    const upload = new Upload(fs.createReadStream(file), {
      ...options,
      ...extra.options,
      onError: fail,
      onSuccess: () => resolve(upload),
      onChunkComplete: (_chunk, accepted) => {
        if (extra.stopAfterFirst) {
          upload.abort().then(() => resolve({ url: upload.url, accepted }));
        }
      },
    });
    upload.start();
  });
}

if (mode === "--resume") {
  const first = await run({ stopAfterFirst: true });
  let resumedFrom = null;
  const second = await run({
    options: {
      uploadUrl: first.url,
      onBeforeRequest: (req) => {
        if (req.getMethod() === "PATCH" && resumedFrom === null) resumedFrom = Number(req.getHeader("Upload-Offset"));
      },
    },
  });
  console.log(JSON.stringify({ url: second.url, firstChunkOffset: first.accepted, resumedFrom }));
} else {
  const upload = await run({});
  console.log(JSON.stringify({ url: upload.url, firstChunkOffset: null, resumedFrom: null }));
}
