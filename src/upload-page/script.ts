/**
 * The upload page's script (served as /_upload/app.js). Small files: one presigned POST
 * (SSE-KMS) sent with XMLHttpRequest, for the upload progress events fetch lacks. Files
 * above one part: a multipart upload the worker grants step by step (multipart.ts) —
 * parts sent four at a time straight to the endpoint with presigned UploadPart URLs, each
 * retried up to three times with backoff, one progress bar for the whole file. The
 * upload's receipt and the file's name, size and lastModified are kept in localStorage, so
 * choosing the same file again (after a reload, a crash, a network failure) lists the parts
 * already stored and sends only the missing ones. Then it shows what was stored and a
 * presigned download link.
 */
export const PAGE_SCRIPT = `"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const form = $("upload-form");
  const fileInput = $("file");
  const button = $("upload");
  const tokenInput = $("token");
  const SINGLE_POST_MAX = Number(document.querySelector("main").dataset.singlePostMax);
  const PARALLEL = 4;
  const TRIES = 3;
  const STATE_KEY = "upload-page-multipart";
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

  function setStatus(message) {
    $("status").textContent = message;
    $("status").hidden = !message;
  }

  function formatBytes(n) {
    const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
  }

  function showProgress(loaded, total, detail) {
    const percent = total > 0 ? Math.floor((loaded / total) * 100) : 100;
    $("progress").value = percent;
    $("percent").textContent = percent + "%";
    $("progress-bytes").textContent = formatBytes(loaded) + " of " + formatBytes(total) + (detail ? " · " + detail : "");
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

  async function api(path, body) {
    return json(await fetch("/_upload/" + path, {
      method: "POST",
      headers: { "content-type": "application/json", ...authHeaders() },
      body: JSON.stringify(body),
    }));
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // ---- one presigned POST ----

  function postForm(grant, file) {
    const data = new FormData();
    for (const [name, value] of Object.entries(grant.fields)) data.append(name, value);
    data.append("Content-Type", file.type || "application/octet-stream");
    data.append("file", file);
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", grant.url);
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) showProgress(event.loaded, event.total);
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

  async function uploadInOnePost(file) {
    const grant = await api("form", { filename: file.name, size: file.size, contentType: file.type });
    const key = await postForm(grant, file);
    return { key, receipt: grant.receipt };
  }

  // ---- multipart ----

  function loadState() {
    try {
      return JSON.parse(localStorage.getItem(STATE_KEY) || "null");
    } catch {
      return null;
    }
  }
  const saveState = (state) => localStorage.setItem(STATE_KEY, JSON.stringify(state));
  const clearState = () => localStorage.removeItem(STATE_KEY);
  const sameFile = (state, file) => !!state && state.name === file.name && state.size === file.size && state.lastModified === file.lastModified;

  /** PUTs one part to its presigned URL; resolves with the part's ETag. */
  function putPart(url, blob, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("PUT", url);
      xhr.upload.addEventListener("progress", (event) => onProgress(event.loaded));
      xhr.addEventListener("load", () => {
        if (xhr.status === 200) resolve(xhr.getResponseHeader("ETag"));
        else reject(new Error(s3Error(xhr)));
      });
      xhr.addEventListener("error", () => reject(new Error("network error")));
      xhr.addEventListener("abort", () => reject(new Error("aborted")));
      xhr.send(blob);
    });
  }

  async function uploadInParts(file) {
    let state = loadState();
    const done = new Map();
    if (sameFile(state, file)) {
      try {
        const listed = await api("multipart/parts", { receipt: state.receipt });
        for (const part of listed.parts) done.set(part.partNumber, part.size);
        setStatus("Resuming the interrupted upload of this file: " + done.size + " of " + state.partCount + " parts are already stored.");
      } catch (error) {
        // Gone (completed, aborted, expired) or its receipt expired: start over.
        state = null;
      }
    } else if (state) {
      // Another file takes the slot; release the unfinished upload's parts.
      api("multipart/abort", { receipt: state.receipt }).catch(() => {});
      state = null;
    }
    if (!state) {
      clearState();
      const created = await api("multipart/create", { filename: file.name, size: file.size, contentType: file.type });
      state = { name: file.name, size: file.size, lastModified: file.lastModified, key: created.key, uploadId: created.uploadId, receipt: created.receipt, partSize: created.partSize, partCount: created.partCount };
      saveState(state);
    }
    const upload = state;
    let doneBytes = 0;
    for (const size of done.values()) doneBytes += size;
    const inFlight = new Map();
    const render = () => {
      let loaded = doneBytes;
      for (const bytes of inFlight.values()) loaded += bytes;
      showProgress(loaded, file.size, done.size + " of " + upload.partCount + " parts");
    };
    render();

    async function sendPart(partNumber) {
      const start = (partNumber - 1) * upload.partSize;
      const blob = file.slice(start, Math.min(start + upload.partSize, file.size));
      for (let attempt = 1; ; attempt++) {
        try {
          // A fresh URL per attempt: presigned URLs expire, and a retry should not.
          const signed = await api("multipart/sign", { receipt: upload.receipt, partNumber });
          await putPart(signed.url, blob, (loaded) => { inFlight.set(partNumber, loaded); render(); });
          inFlight.delete(partNumber);
          done.set(partNumber, blob.size);
          doneBytes += blob.size;
          render();
          return;
        } catch (error) {
          inFlight.delete(partNumber);
          render();
          if (attempt >= TRIES) throw new Error("Part " + partNumber + " failed " + TRIES + " times (" + error.message + "). Choose the file again to resume.");
          await sleep(500 * 2 ** (attempt - 1));
        }
      }
    }

    const pending = [];
    for (let n = 1; n <= upload.partCount; n++) if (!done.has(n)) pending.push(n);
    let next = 0;
    let failure = null;
    async function worker() {
      while (!failure && next < pending.length) {
        const partNumber = pending[next++];
        try {
          await sendPart(partNumber);
        } catch (error) {
          failure = failure || error;
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(PARALLEL, pending.length) }, worker));
    if (failure) throw failure;
    setStatus("Completing the upload…");
    await api("multipart/complete", { receipt: upload.receipt });
    clearState();
    setStatus("");
    return { key: upload.key, receipt: upload.receipt };
  }

  fileInput.addEventListener("change", () => {
    const file = fileInput.files[0];
    const state = loadState();
    setStatus(file && sameFile(state, file) ? "This file has an interrupted upload; Upload resumes it." : "");
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = fileInput.files[0];
    if (!file) return;
    $("error").hidden = true;
    $("result").hidden = true;
    $("progress-box").hidden = false;
    showProgress(0, file.size);
    button.disabled = true;
    try {
      const stored = file.size > SINGLE_POST_MAX ? await uploadInParts(file) : await uploadInOnePost(file);
      const info = await json(await fetch("/_upload/object?key=" + encodeURIComponent(stored.key) + "&receipt=" + encodeURIComponent(stored.receipt), { headers: authHeaders() }));
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
