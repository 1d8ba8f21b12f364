// The page at /: pick, drop or paste an image, POST it to /v1/predict, draw the top-k as bars.
// It uses only the public API (GET /v1/models, POST /v1/predict), like any client. No inline code: the page's
// Content-Security-Policy allows scripts and styles from this origin only.
"use strict";

(() => {
  const MAX_TOP_K = 20;
  const KEY_STORAGE = "visionserve.apiKey"; // sessionStorage: this tab only, gone when it closes
  const MODELS_RETRIES = 60;
  const HEAD_TITLES = { imagenet: "ImageNet-1k", cifar10: "CIFAR-10" };
  const $ = (id) => document.getElementById(id);

  const state = { file: null, previewUrl: null, models: null, sequence: 0, modelsTries: 0 };

  /** A refusal of the API (or no answer at all), with what the page shows about it. */
  class ApiFailure extends Error {
    constructor(status, code, message, details) {
      super(message);
      this.status = status;
      this.code = code;
      this.details = details || {};
    }
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function apiKey() {
    return $("api-key").value.trim();
  }

  /** fetch with the API key, the answer parsed; non-2xx answers throw ApiFailure with the server's words. */
  async function call(url, options = {}) {
    const headers = new Headers(options.headers || {});
    if (apiKey()) headers.set("Authorization", `Bearer ${apiKey()}`);
    const started = performance.now();
    let response;
    try {
      response = await fetch(url, { ...options, headers, cache: "no-store", credentials: "omit" });
    } catch (err) {
      throw new ApiFailure(0, "no_answer", `the server could not be reached (${err.message})`);
    }
    const elapsedMs = performance.now() - started;
    let body = null;
    try {
      body = await response.json();
    } catch (err) {
      body = null;
    }
    if (!response.ok) {
      const error = (body && body.error) || {};
      const message = error.message || (body && body.status ? `the service is ${body.status}` : response.statusText);
      throw new ApiFailure(response.status, error.code || (body && body.status) || `http_${response.status}`, message, {
        retryAfter: response.headers.get("Retry-After"),
        requestId: error.request_id || response.headers.get("X-Request-ID"),
        accepted: error.accepted,
      });
    }
    return { body, elapsedMs };
  }

  function showError(failure) {
    const box = $("error");
    box.replaceChildren();
    const title = failure.status ? `${failure.status} ${failure.code}` : failure.code;
    const head = element("p", "error-title");
    head.append(element("strong", "", title), document.createTextNode(`: ${failure.message}`));
    box.append(head);
    const { retryAfter, requestId, accepted } = failure.details;
    if (retryAfter) box.append(element("p", "", `The server asks to retry after ${retryAfter} s.`));
    if (failure.status === 401) {
      box.append(element("p", "", "This server requires an API key: enter it in the API key field."));
      $("api-key").focus();
    }
    if (accepted !== undefined) {
      const text = Array.isArray(accepted) ? accepted.join(", ") : JSON.stringify(accepted);
      box.append(element("p", "small", `Accepted: ${text}`));
    }
    if (requestId) box.append(element("p", "small muted", `Request id: ${requestId}`));
    box.hidden = false;
  }

  function clearError() {
    $("error").hidden = true;
    $("error").replaceChildren();
  }

  // --- the model: weights in use, the random-weights warning, which heads exist ---

  function describeWeights(weights) {
    const parts = [weights.source];
    if (weights.sha256) parts.push(`sha256 ${weights.sha256.slice(0, 12)}…`);
    return parts.join(", ");
  }

  function showModels(models) {
    state.models = models;
    const m = models.model;
    $("model-line").textContent =
      `${m.name} v${m.version} · ${m.runtime} ${m.precision} on ${m.device} · server ${m.server_version}`;
    $("random-warning").hidden = !m.random_weights;
    const list = $("weights");
    list.replaceChildren();
    for (const [name, head] of Object.entries(models.heads)) {
      list.append(element("dt", "", HEAD_TITLES[name] || name));
      const text = head.available ? describeWeights(head.weights) : "not loaded on this server";
      const value = element("dd", head.weights.kind === "random" ? "random" : "", text);
      list.append(value);
    }
    const cifar = models.heads.cifar10;
    const box = $("head-cifar10");
    box.disabled = !cifar.available;
    if (!cifar.available) box.checked = false;
    $("cifar10-note").textContent = cifar.available ? "10 classes" : "not loaded on this server";
    const topK = $("top-k");
    if (!topK.dataset.touched) topK.value = String(Math.min(models.limits.default_top_k, MAX_TOP_K));
  }

  async function loadModels() {
    try {
      const { body } = await call("/v1/models");
      showModels(body);
      clearError();
    } catch (failure) {
      $("model-line").textContent = `The model description is not available (${failure.message}).`;
      showError(failure);
      if (failure.status === 503 && state.modelsTries < MODELS_RETRIES) {
        state.modelsTries += 1;
        const seconds = Number(failure.details.retryAfter) || 2;
        setTimeout(loadModels, Math.min(seconds, 30) * 1000);
      }
    }
    updateButton();
  }

  // --- the picture ---

  function chosenHeads() {
    return [...document.querySelectorAll('input[name="head"]:checked')].map((box) => box.value);
  }

  function updateButton() {
    $("classify").disabled = !state.file || chosenHeads().length === 0;
  }

  function useFile(file) {
    if (!file) return;
    state.file = file;
    if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
    state.previewUrl = URL.createObjectURL(file);
    const preview = $("preview");
    preview.src = state.previewUrl;
    preview.alt = `The image to classify: ${file.name || "pasted image"}`;
    preview.hidden = false;
    $("file-name").textContent = `${file.name || "pasted image"} · ${file.type || "unknown type"} · ${file.size} bytes`;
    updateButton();
    classify();
  }

  function topK() {
    const value = Number($("top-k").value);
    if (!Number.isInteger(value) || value < 1 || value > MAX_TOP_K) {
      throw new ApiFailure(0, "invalid_top_k", `top-k must be a whole number from 1 to ${MAX_TOP_K}`);
    }
    return value;
  }

  // --- classification ---

  /** "61.23%"; below a hundredth of a percent, "<0.01%" (the exact score is in the row's data-score). */
  function percent(score) {
    const value = score * 100;
    return value < 0.01 ? "<0.01%" : `${value.toFixed(2)}%`;
  }

  function drawHead(name, ranked) {
    const section = element("section", "head");
    section.dataset.head = name;
    section.append(element("h3", "", HEAD_TITLES[name] || name));
    const list = element("ol", "bars");
    for (const { label, index, score } of ranked) {
      const row = element("li", "bar");
      row.dataset.label = label;
      row.dataset.index = String(index);
      row.dataset.score = String(score);
      const track = element("span", "track");
      track.setAttribute("aria-hidden", "true");
      const fill = element("span", "fill");
      fill.style.width = `${Math.max(score * 100, 0.5)}%`; // CSSOM, not a style attribute: the CSP allows it
      track.append(fill);
      row.append(element("span", "label", label), track, element("span", "score", percent(score)));
      list.append(row);
    }
    section.append(list);
    return section;
  }

  function showAnswer(answer, elapsedMs) {
    const prediction = answer.predictions[0];
    const known = Object.keys(HEAD_TITLES).filter((name) => name in prediction.heads);
    const names = [...known, ...Object.keys(prediction.heads).filter((name) => !(name in HEAD_TITLES))];
    $("heads").replaceChildren(...names.map((name) => drawHead(name, prediction.heads[name])));
    const t = prediction.timings_ms;
    const where = prediction.cached
      ? "answered from the response cache"
      : `preprocess ${t.preprocess.toFixed(1)}, queue ${t.queue.toFixed(1)}, inference ${t.inference.toFixed(1)} ms, ` +
        `batch of ${prediction.batch_size}`;
    $("latency").textContent =
      `Round trip ${elapsedMs.toFixed(0)} ms; server ${answer.timings_ms.total.toFixed(1)} ms (${where}).`;
    $("status").textContent = `Best first: ${names.map((name) => HEAD_TITLES[name] || name).join(" and ")}.`;
  }

  async function classify() {
    if (!state.file) return;
    const sequence = ++state.sequence; // a later request supersedes this one
    const results = $("results");
    try {
      const heads = chosenHeads();
      if (heads.length === 0) throw new ApiFailure(0, "no_head", "choose at least one head");
      const query = new URLSearchParams({ heads: heads.join(","), top_k: String(topK()) });
      results.setAttribute("aria-busy", "true");
      $("status").textContent = "Classifying…";
      const { body, elapsedMs } = await call(`/v1/predict?${query}`, {
        method: "POST",
        body: state.file,
        headers: { "Content-Type": state.file.type || "application/octet-stream" },
      });
      if (sequence !== state.sequence) return;
      clearError();
      showAnswer(body, elapsedMs);
      if (!state.models) loadModels(); // a key entered after a 401 also opens the model description
    } catch (failure) {
      if (sequence !== state.sequence) return;
      $("heads").replaceChildren();
      $("latency").textContent = "";
      $("status").textContent = "No predictions.";
      showError(failure instanceof ApiFailure ? failure : new ApiFailure(0, "page_error", String(failure)));
    } finally {
      if (sequence === state.sequence) results.removeAttribute("aria-busy");
    }
  }

  // --- wiring ---

  function firstImage(items) {
    for (const item of items || []) {
      if (item.kind === "file") return item.getAsFile();
    }
    return null;
  }

  function wire() {
    const key = $("api-key");
    key.value = sessionStorage.getItem(KEY_STORAGE) || "";
    key.addEventListener("change", () => {
      if (apiKey()) sessionStorage.setItem(KEY_STORAGE, apiKey());
      else sessionStorage.removeItem(KEY_STORAGE);
      if (!state.models) loadModels();
    });

    $("file").addEventListener("change", (event) => useFile(event.target.files[0]));
    $("controls").addEventListener("submit", (event) => {
      event.preventDefault();
      classify();
    });
    $("top-k").addEventListener("change", () => {
      $("top-k").dataset.touched = "1";
      classify();
    });
    for (const box of document.querySelectorAll('input[name="head"]')) {
      box.addEventListener("change", () => {
        updateButton();
        classify();
      });
    }

    const drop = $("drop");
    for (const type of ["dragenter", "dragover"]) {
      drop.addEventListener(type, (event) => {
        event.preventDefault();
        drop.classList.add("dragging");
      });
    }
    drop.addEventListener("dragleave", () => drop.classList.remove("dragging"));
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("dragging");
      useFile(event.dataTransfer.files[0]);
    });
    // a file dropped beside the zone must not replace the page
    window.addEventListener("dragover", (event) => event.preventDefault());
    window.addEventListener("drop", (event) => event.preventDefault());
    document.addEventListener("paste", (event) => {
      const file = firstImage(event.clipboardData && event.clipboardData.items);
      if (file) {
        event.preventDefault();
        useFile(file);
      }
    });
  }

  wire();
  loadModels();
})();
