// Tasse's dashboard script: live updates and conveniences on top of pages that work without it.
// One event stream per tab: /events on most pages, the run's own log stream on a run page.
"use strict";

(() => {
  const body = document.body;

  // -- times: "12 s ago" and countdowns stay current -------------------------------------
  const span = (seconds) => {
    seconds = Math.abs(seconds);
    if (seconds < 60) return `${Math.round(seconds)} s`;
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return `${minutes} min${seconds % 60 >= 1 ? ` ${Math.floor(seconds % 60)} s` : ""}`;
    const hours = Math.floor(minutes / 60);
    if (hours < 48) return `${hours} h${minutes % 60 ? ` ${minutes % 60} min` : ""}`;
    return `${Math.floor(hours / 24)} d`;
  };
  const tick = () => {
    const now = Date.now();
    for (const el of document.querySelectorAll("time[data-countdown]")) {
      const seconds = (Date.parse(el.dateTime) - now) / 1000;
      el.textContent = seconds < 0.5 ? "due" : `in ${span(seconds)}`;
    }
    for (const el of document.querySelectorAll("time[data-ago]")) {
      const seconds = (now - Date.parse(el.dateTime)) / 1000;
      el.textContent = Math.abs(seconds) < 1 ? "now" : seconds > 0 ? `${span(seconds)} ago` : `in ${span(seconds)}`;
    }
  };
  setInterval(tick, 1000);

  // -- filters apply as they change -----------------------------------------------------
  for (const field of document.querySelectorAll("[data-autosubmit]")) {
    let timer;
    const submit = () => field.form.requestSubmit();
    field.addEventListener(field.type === "search" ? "input" : "change", () => {
      clearTimeout(timer);
      timer = setTimeout(submit, field.type === "search" ? 350 : 0);
    });
  }

  // -- a form is sent once ------------------------------------------------------------
  for (const form of document.querySelectorAll("form[method=post]")) {
    form.addEventListener("submit", () => {
      for (const button of form.querySelectorAll("button")) button.disabled = true;
    });
  }

  const liveState = document.querySelector("[data-live-state]");
  const showLive = (on) => {
    if (!liveState) return;
    liveState.hidden = false;
    liveState.textContent = on ? "● live" : "○ reconnecting…";
    liveState.title = on ? "updates as tasks run" : "the connection to the server dropped";
  };

  // -- refresh: fetch this page again and swap the parts marked data-live-region ----------
  let refreshing = false, again = false, timer = null;
  const refresh = async () => {
    if (refreshing) { again = true; return; }
    refreshing = true;
    try {
      const answer = await fetch(location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" });
      if (!answer.ok) return;
      const page = new DOMParser().parseFromString(await answer.text(), "text/html");
      for (const fresh of page.querySelectorAll("[data-live-region]")) {
        const old = document.querySelector(`[data-live-region="${fresh.dataset.liveRegion}"]`);
        // Never pull a control out from under the reader's hands.
        if (old && !old.contains(document.activeElement)) old.replaceWith(fresh);
      }
      for (const selector of [".status-bar .health", "nav [data-problem-count]"]) {
        const fresh = page.querySelector(selector), old = document.querySelector(selector);
        if (fresh && old) old.replaceWith(fresh);
      }
      tick();
    } finally {
      refreshing = false;
      if (again) { again = false; schedule(); }
    }
  };
  const schedule = (delay = 1000) => {
    if (timer === null) timer = setTimeout(() => { timer = null; refresh(); }, delay);
  };

  // -- live: /events for task and run changes --------------------------------------------
  const mode = body.dataset.live || "";
  const shown = () => new Set([...document.querySelectorAll("[data-task]")].map((el) => el.dataset.task));
  const tasksOf = (data) => data.tasks || [data.task];
  const onEvent = (message) => {
    let data = {};
    try { data = JSON.parse(message.data); } catch { return; }
    const tasks = tasksOf(data);
    if (mode === "overview") {
      // A row on this page changed, or the list itself did (a task came or went).
      const visible = shown();
      if (message.type === "task.added" || message.type === "task.removed" || tasks.some((t) => visible.has(t))) schedule(2000);
    } else if (mode.startsWith("task:")) {
      if (tasks.includes(mode.slice(5))) schedule(1000);
    } else {
      schedule(5000);
    }
  };
  if (mode && !mode.startsWith("run:") && window.EventSource) {
    const query = mode.startsWith("task:") ? `?task=${encodeURIComponent(mode.slice(5))}` : "";
    const events = new EventSource(`/events${query}`);
    for (const type of ["run", "task.added", "task.changed", "task.removed", "task.env"]) {
      events.addEventListener(type, onEvent);
    }
    events.addEventListener("reset", () => schedule(0));
    events.onopen = () => showLive(true);
    events.onerror = () => showLive(false);
  }

  // -- a run's log, live ---------------------------------------------------------------
  const log = document.querySelector("pre[data-log]");
  const follow = document.querySelector("input[data-follow]");
  if (log && follow) {
    const atBottom = () => log.scrollHeight - log.scrollTop - log.clientHeight < 24;
    const stick = () => { if (follow.checked) log.scrollTop = log.scrollHeight; };
    // Scrolling up to read stops following; back at the end, it follows again.
    log.addEventListener("scroll", () => { follow.checked = atBottom(); });
    follow.addEventListener("change", stick);
    stick();
    if (log.dataset.final !== "true" && window.EventSource) {
      const url = `/runs/${encodeURIComponent(log.dataset.run)}/log/events?last_event_id=${log.dataset.offset}`;
      const stream = new EventSource(url);
      stream.addEventListener("log", (message) => {
        const following = follow.checked;
        log.append(document.createTextNode(message.data));
        if (following) log.scrollTop = log.scrollHeight;
      });
      stream.addEventListener("end", () => { stream.close(); schedule(0); });
      stream.onopen = () => showLive(true);
      stream.onerror = () => showLive(false);
    }
  }
})();
