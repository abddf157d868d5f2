() => {
  // The Forward slider's x_t picture, fetched straight from the server's frame route
  // (explorer/forward_frames.py) instead of a Gradio event: GET <source>&t=<t>, one request at a
  // time, newest move first (a move made while one loads replaces any waiting one). Each answer
  // is shown in the x_t picture once decoded, its X-Numbers header fills the numbers line and its
  // X-Histogram header moves the histogram's bars (Plotly.update: no Gradio event while dragging).
  // The request leaves on the range's own input event, before Gradio's event handling (which took
  // 70-140 ms to reach a page script on a 2-core machine); the histogram, whose redraw takes tens of
  // milliseconds, follows at most every HIST_GAP_MS, in idle time, so it never holds a picture up.
  // The address names everything the picture depends on, so the browser's own cache answers
  // moves over a stretch already seen. #fw-frames [data-frames] holds the address for the
  // settings shown (written by the server with every view); without one (2-D points, signals)
  // or when the route cannot answer, the page clicks #fw-noisy (and, for a picture, #fw-hist-go): the
  // Gradio events do it instead.
  const $ = (s) => document.querySelector(s);
  let wanted = null;             // the newest move not yet asked for: t
  let busy = false;
  let objectUrl = null;          // the blob URL shown last (freed when the next one shows)
  let asked = null;              // the address + t last asked for: the same move is not asked twice
  const HIST_GAP_MS = 150;
  let histHeader = null, histTimer = null, histLast = 0;

  const source = () => { const el = $('#fw-frames [data-frames]'); return el ? el.dataset.frames : null; };
  const fallback = (picture) => {
    for (const id of picture ? ['#fw-noisy', '#fw-hist-go'] : ['#fw-noisy']) { const b = $(id); if (b) b.click(); }
  };
  // false: the histogram is not drawn yet (plotly still loading, as on the first page a server
  // serves), so the values are kept and tried again, or the histogram would stay at the t it was drawn at
  const moveHistogram = (header) => {
    const gd = $('#fw-hist .js-plotly-plot');
    if (!header) return true;
    if (!gd || !gd.data || !window.Plotly) return false;
    try {
      const h = JSON.parse(decodeURIComponent(header));
      window.Plotly.update(gd, {y: [h.y], name: [h.name]}, {'title.text': h.title, 'yaxis.range': [0, h.ceiling]}, [0]);
    } catch (_) { /* a plot being redrawn by Gradio: its own value follows */ }
    return true;
  };
  let histFor = null, histTries = 0;  // the settings the kept values belong to; tries while not drawn
  const queueHistogram = (header) => {  // latest wins; at most one redraw every HIST_GAP_MS
    if (header !== histHeader) { histHeader = header; histFor = source(); histTries = 0; }
    if (histTimer !== null) return;
    histTimer = setTimeout(() => {
      const run = () => {
        histTimer = null;
        histLast = performance.now();
        // not drawn yet: again in HIST_GAP_MS while the settings are the same (for up to a minute)
        if (!moveHistogram(histHeader) && source() === histFor && ++histTries < 400) queueHistogram(histHeader);
      };
      if (window.requestIdleCallback) requestIdleCallback(run, {timeout: 100}); else run();
    }, Math.max(0, histLast + HIST_GAP_MS - performance.now()));
  };
  const inSight = () => { const v = $('#view-main'); return !!(v && v.offsetParent !== null); };

  const show = async (base, t, r) => {
    const blob = await r.blob();
    const url = URL.createObjectURL(blob);
    const probe = new Image();
    probe.src = url;
    try { await probe.decode(); } catch (_) { /* shown anyway: the browser decodes it on paint */ }
    const img = $('#ximg img');
    if (!img || source() !== base) { URL.revokeObjectURL(url); return; }  // the settings changed meanwhile
    img.src = url;
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = url;
    const numbers = $('#fw-coeffs .coeffs');
    if (numbers) numbers.innerHTML = decodeURIComponent(r.headers.get('X-Numbers') || '');
    queueHistogram(r.headers.get('X-Histogram'));
  };

  const pump = async () => {
    busy = true;
    try {
      while (wanted !== null) {
        const t = wanted, base = source();
        wanted = null;
        if (!base) { fallback(false); continue; }
        let r = null;
        try { r = await fetch(`${base}&t=${t}`, {credentials: 'same-origin'}); } catch (_) { r = null; }
        if (r && r.ok) await show(base, t, r);
        else fallback(true);  // the events say what went wrong, if anything did
      }
    } finally {
      busy = false;
    }
  };

  const move = (t) => {
    if (!inSight()) return;      // the other sub-tabs follow t through their own event
    const base = source();
    if (!base) { fallback(false); return; }
    if (`${base}&t=${t}` === asked) return;  // seen already (the range's own event, then Gradio's)
    asked = `${base}&t=${t}`;
    wanted = t;
    if (!busy) pump();
  };
  window.deForwardMove = move;   // Gradio's input event on the slider (the number box, keys, a script)
  document.addEventListener('input', (e) => {
    const range = e.target;
    if (range && range.matches && range.matches('#tslider input[type=range]') && source()) move(Number(range.value));
  }, true);

  // t's hidden copy drives the figures' paced event (t_views). While the pictures come from the route
  // (an image, the main view in sight) the histogram comes with them and the curves' markers move in
  // the page, so the copy keeps the value it had: a drag then sends no Gradio event at all.
  let held = null;               // the value this page last gave the copy
  window.deForwardCopy = (t) => {
    if (inSight() && source()) { if (held === null) held = t; return held; }
    held = t;
    return t;
  };

  // New settings (a view from the server names a new address): the picture follows the slider's t
  // as it is now, which may have moved on while that view was computed.
  let watched = null;
  const watch = () => {
    const el = $('#fw-frames');
    if (el && el !== watched) {
      watched = el;
      // read t once the view's other outputs are applied too: the address is written first, and a
      // link's view (t=900) then asked for the picture at the t the page opened with (250), whose answer
      // came after the view and replaced its picture and numbers
      let pending = false;
      new MutationObserver(() => {
        if (pending) return;
        pending = true;
        requestAnimationFrame(() => setTimeout(() => {
          pending = false;
          const box = $('#tslider input[type=number]');
          if (box && source() && inSight()) { asked = null; move(Number(box.value)); }
        }, 0));
      }).observe(el, {subtree: true, childList: true, attributes: true});
    }
    if (!el) setTimeout(watch, 500);
  };
  watch();
}
