/**
 * The upload page: plain HTML and a small script, no build step. The script asks the
 * worker for a presigned POST (SSE-KMS), uploads the file with XMLHttpRequest (for the
 * progress events fetch lacks on uploads), then shows what was stored and a presigned
 * download link.
 */

export function pageHtml(options: { bucket: string; maxBytes: number; singlePostMaxBytes: number; tokenRequired: boolean }): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Encrypted upload</title>
<style>
  :root { font-family: system-ui, sans-serif; color: #1d2430; background: #f5f7fa; }
  main { max-width: 40rem; margin: 3rem auto; background: #fff; padding: 2rem; border-radius: 12px; box-shadow: 0 2px 12px rgb(0 0 0 / 8%); }
  h1 { margin-top: 0; font-size: 1.5rem; }
  .muted { color: #5b6575; font-size: 0.9rem; }
  label { display: block; margin: 1rem 0 0.25rem; font-weight: 600; }
  input[type=password] { width: 100%; padding: 0.4rem; box-sizing: border-box; }
  button { margin-top: 1rem; padding: 0.6rem 1.4rem; font-size: 1rem; border: 0; border-radius: 6px; background: #2457d6; color: #fff; cursor: pointer; }
  button:disabled { background: #9aa7c2; cursor: default; }
  progress { width: 100%; height: 1.2rem; margin-top: 1rem; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.4rem 1rem; margin-top: 1.5rem; }
  dt { font-weight: 600; }
  dd { margin: 0; word-break: break-all; font-family: ui-monospace, monospace; font-size: 0.85rem; }
  .error { margin-top: 1rem; padding: 0.8rem; border-radius: 6px; background: #fdecec; color: #8a1c1c; }
  [hidden] { display: none !important; }
</style>
</head>
<body>
<main>
  <h1>Encrypted upload</h1>
  <p class="muted">Files go straight from this browser to bucket <strong id="bucket">${escapeHtml(options.bucket)}</strong>
  through a presigned POST form and are stored encrypted with SSE-KMS. Largest file: ${formatBytes(options.maxBytes)}.</p>
  <form id="upload-form">
    <div ${options.tokenRequired ? "" : "hidden"}>
      <label for="token">Access token</label>
      <input type="password" id="token" autocomplete="off">
    </div>
    <label for="file">File</label>
    <input type="file" id="file" required>
    <br>
    <button type="submit" id="upload">Upload</button>
  </form>
  <div id="progress-box" hidden>
    <progress id="progress" max="100" value="0"></progress>
    <div class="muted"><span id="percent">0%</span> <span id="progress-bytes"></span></div>
  </div>
  <div id="error" class="error" role="alert" hidden></div>
  <section id="result" hidden>
    <dl>
      <dt>Key</dt><dd id="result-key"></dd>
      <dt>Size</dt><dd id="result-size"></dd>
      <dt>ETag</dt><dd id="result-etag"></dd>
      <dt>Encryption</dt><dd id="result-encryption"></dd>
      <dt>KMS key ARN</dt><dd id="result-key-arn"></dd>
      <dt>Download</dt><dd><a id="download" href="#">presigned GET link</a> <span class="muted">(valid 1 hour)</span></dd>
    </dl>
  </section>
</main>
<script src="/_upload/app.js"></script>
</body>
</html>`;
}

export const PAGE_SCRIPT = `"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const form = $("upload-form");
  const fileInput = $("file");
  const button = $("upload");
  const tokenInput = $("token");
  tokenInput.value = sessionStorage.getItem("upload-token") || "";

  function authHeaders() {
    const token = tokenInput.value.trim();
    if (token) sessionStorage.setItem("upload-token", token);
    return token ? { authorization: "Bearer " + token } : {};
  }

  function showError(message) {
    $("error").textContent = message;
    $("error").hidden = false;
  }

  function formatBytes(n) {
    const units = ["bytes", "KiB", "MiB", "GiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
  }

  /** S3 answers errors as XML: show its Code and Message. */
  function s3Error(xhr) {
    const doc = xhr.responseXML || new DOMParser().parseFromString(xhr.responseText || "", "application/xml");
    const code = doc.querySelector("Error > Code");
    const message = doc.querySelector("Error > Message");
    return code ? code.textContent + ": " + (message ? message.textContent : "") : "HTTP " + xhr.status;
  }

  async function json(response) {
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error || "HTTP " + response.status);
    return body;
  }

  function upload(grant, file) {
    const data = new FormData();
    for (const [name, value] of Object.entries(grant.fields)) data.append(name, value);
    data.append("Content-Type", file.type || "application/octet-stream");
    data.append("file", file);
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", grant.url);
      xhr.upload.addEventListener("progress", (event) => {
        if (!event.lengthComputable) return;
        const percent = Math.floor((event.loaded / event.total) * 100);
        $("progress").value = percent;
        $("percent").textContent = percent + "%";
        $("progress-bytes").textContent = formatBytes(event.loaded) + " of " + formatBytes(event.total);
      });
      xhr.addEventListener("load", () => {
        if (xhr.status === 201) {
          const key = xhr.responseXML && xhr.responseXML.querySelector("PostResponse > Key");
          resolve(key ? key.textContent : "");
        } else reject(new Error(s3Error(xhr)));
      });
      xhr.addEventListener("error", () => reject(new Error("The upload failed (network error).")));
      xhr.send(data);
    });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = fileInput.files[0];
    if (!file) return;
    $("error").hidden = true;
    $("result").hidden = true;
    $("progress-box").hidden = false;
    $("progress").value = 0;
    $("percent").textContent = "0%";
    button.disabled = true;
    try {
      const grant = await json(await fetch("/_upload/form", {
        method: "POST",
        headers: { "content-type": "application/json", ...authHeaders() },
        body: JSON.stringify({ filename: file.name, size: file.size, contentType: file.type }),
      }));
      const key = await upload(grant, file);
      const info = await json(await fetch("/_upload/object?key=" + encodeURIComponent(key) + "&receipt=" + encodeURIComponent(grant.receipt), { headers: authHeaders() }));
      $("result-key").textContent = info.key;
      $("result-size").textContent = formatBytes(info.size) + " (" + info.size + " bytes)";
      $("result-etag").textContent = info.etag;
      $("result-encryption").textContent = info.encryption;
      $("result-key-arn").textContent = info.keyArn;
      $("download").href = info.download;
      $("result").hidden = false;
    } catch (error) {
      showError(error.message);
    } finally {
      button.disabled = false;
    }
  });
})();
`;

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function formatBytes(n: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}
