// Safeguard review console: progressive enhancement over server-rendered pages. Everything
// works without this script except revealing media, which must be recorded first (exposure
// accounting), so reveal buttons do nothing without it. Plain ES2020, no framework, no build.
"use strict";

(() => {
  /** Length of one video frame for stepping, seconds (25 fps, the common evidence rate). */
  const FRAME_S = 1 / 25;
  /** Fallback reveal length if the server's answer lacks one, ms. */
  const DEFAULT_MAX_MS = 60000;

  /** The one revealed item: {figure, el, revealId, timer}, or null. */
  let current = null;
  /** Bumped by every reveal request, so a slow answer to an older click is undone. */
  let requestSeq = 0;

  const csrf = () => {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  };

  const post = (url, body, keepalive = false) => {
    const headers = { "X-CSRF-Token": csrf() };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      keepalive,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  };

  const mediaOf = (figure) => figure.querySelector(".media-img, .media-video");

  const say = (figure, text) => {
    const s = figure.querySelector(".reveal-status");
    if (s) s.textContent = text;
  };

  const endReveal = (revealId, keepalive) => {
    post(`/console/reveals/${encodeURIComponent(revealId)}/end`, undefined, keepalive).catch(() => {
      // The server ends reveals left open at their maximum length; nothing to do here.
    });
  };

  // Re-blurs when the revealed item scrolls out of view: what is not being looked at should
  // not stay uncovered, and its visible time should stop counting.
  const observer =
    "IntersectionObserver" in window
      ? new IntersectionObserver((entries) => {
          for (const e of entries) {
            if (!e.isIntersecting && current && e.target === current.figure) reblur();
          }
        })
      : null;

  function reblur(keepalive = false) {
    // Also voids a reveal still waiting for the server (Escape, leaving the page, another
    // item): its answer is then ended at once instead of shown.
    requestSeq++;
    if (!current) return;
    const { figure, el, revealId, timer } = current;
    current = null;
    clearTimeout(timer);
    if (observer) observer.unobserve(figure);
    el.classList.remove("revealed");
    el.classList.add("blurred");
    if (el.tagName === "VIDEO") el.pause();
    const button = figure.querySelector("button.reveal");
    if (button) {
      button.textContent = "Reveal";
      button.setAttribute("aria-pressed", "false");
    }
    say(figure, "");
    endReveal(revealId, keepalive);
  }

  async function reveal(figure) {
    if (current && current.figure === figure) {
      reblur();
      return;
    }
    reblur();
    const el = mediaOf(figure);
    const button = figure.querySelector("button.reveal");
    if (!el || !button || button.disabled) return;
    const seq = ++requestSeq;
    button.disabled = true;
    say(figure, "Recording the reveal…");
    let answer;
    try {
      const res = await post("/console/reveals", {
        case_id: Number(figure.dataset.case),
        object_id: figure.dataset.object,
      });
      if (!res.ok) {
        say(figure, res.status === 403 || res.status === 429
          ? "Not allowed now: today's limit is reached or access has ended."
          : "The reveal could not be recorded, so the item stays blurred.");
        return;
      }
      answer = await res.json();
    } catch (_) {
      say(figure, "Network error: the item stays blurred.");
      return;
    } finally {
      button.disabled = false;
    }
    if (seq !== requestSeq) {
      // Cancelled meanwhile (another item, Escape, the page hidden); only one may be visible.
      endReveal(answer.reveal_id, false);
      say(figure, "");
      return;
    }
    reblur();
    el.classList.remove("blurred");
    el.classList.add("revealed");
    button.textContent = "Blur";
    button.setAttribute("aria-pressed", "true");
    say(figure, "Visible; it blurs again by itself.");
    const maxMs = Number(answer.max_ms) > 0 ? Number(answer.max_ms) : DEFAULT_MAX_MS;
    current = { figure, el, revealId: answer.reveal_id, timer: setTimeout(() => reblur(), maxMs) };
    if (observer) observer.observe(figure);
  }

  const videoOf = (node) => {
    const figure = node && node.closest ? node.closest("figure.media") : null;
    return figure ? figure.querySelector("video.media-video") : null;
  };

  const step = (video, frames) => {
    if (!video) return;
    video.pause();
    video.currentTime = Math.max(0, video.currentTime + frames * FRAME_S);
  };

  const openDialog = (id) => {
    const d = document.getElementById(id);
    if (d && typeof d.showModal === "function" && !d.open) d.showModal();
  };

  document.addEventListener("click", (e) => {
    const t = e.target;
    if (!(t instanceof Element)) return;
    const button = t.closest("button");
    if (!button) return;
    if (button.matches("button.reveal")) {
      const figure = button.closest("figure.media");
      if (figure) reveal(figure);
    } else if (button.matches("button.frame-back")) {
      step(videoOf(button), -1);
    } else if (button.matches("button.frame-fwd")) {
      step(videoOf(button), 1);
    } else if (button.matches("button.dialog-close")) {
      const d = button.closest("dialog");
      if (d) d.close();
    }
  });

  document.addEventListener("change", (e) => {
    const t = e.target;
    if (t instanceof HTMLSelectElement && t.matches("select.speed")) {
      const video = videoOf(t);
      if (video) video.playbackRate = Number(t.value) || 1;
    }
  });

  const figures = () => Array.from(document.querySelectorAll("figure.media"));
  const focusedFigure = () => {
    const a = document.activeElement;
    const f = a && a.closest ? a.closest("figure.media") : null;
    if (f) return f;
    const all = figures();
    return all.length === 1 ? all[0] : null;
  };

  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      reblur();
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    const t = e.target;
    if (t instanceof Element && t.closest("input, textarea, select, [contenteditable], dialog")) return;
    const all = figures();
    switch (e.key) {
      case "j":
      case "k": {
        if (all.length === 0) return;
        const at = all.indexOf(focusedFigure());
        const next = e.key === "j" ? Math.min(all.length - 1, at + 1) : Math.max(0, at - 1);
        all[next].focus();
        break;
      }
      case "r": {
        const f = focusedFigure();
        if (f) reveal(f);
        break;
      }
      case ",":
        step(videoOf(focusedFigure()), -1);
        break;
      case ".":
        step(videoOf(focusedFigure()), 1);
        break;
      case "c": {
        const claim = document.querySelector("button.claim-next");
        if (claim) claim.click();
        break;
      }
      case "d": {
        const decision = document.querySelector('select[name="decision"]');
        if (decision) decision.focus();
        break;
      }
      case "g":
        window.location.href = "/console";
        break;
      case "?":
        openDialog("shortcuts");
        break;
      default:
        return;
    }
    e.preventDefault();
  });

  // Leaving the tab or the page must not leave an item uncovered or its reveal open; the end
  // request carries the CSRF header, so it is a keepalive fetch rather than sendBeacon.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") reblur(true);
  });
  window.addEventListener("pagehide", () => reblur(true));

  const init = () => {
    for (const video of document.querySelectorAll("video.media-video")) {
      video.autoplay = false;
      video.muted = true;
      video.pause();
    }
    if (document.body.dataset.breakDue === "true") openDialog("break-prompt");
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
