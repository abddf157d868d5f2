() => {
  // The Forward slider's x_t picture, fetched straight from the server's frame route
  // (explorer/forward_frames.py) instead of a Gradio event: GET <source>&t=<t>, one request at a
  // time, newest move first (a move made while one loads replaces any waiting one). Each answer
  // is shown in the x_t picture once decoded, and its X-Numbers header fills the numbers line.
  // The address names everything the picture depends on, so the browser's own cache answers
  // moves over a stretch already seen. #fw-frames [data-frames] holds the address for the
  // settings shown (written by the server with every view); without one (2-D points, signals)
  // or when the route cannot answer, the page clicks #fw-noisy: the Gradio event does it instead.
  const $ = (s) => document.querySelector(s);
  let wanted = null;             // the newest move not yet asked for: t
  let busy = false;
  let objectUrl = null;          // the blob URL shown last (freed when the next one shows)

  const source = () => { const el = $('#fw-frames [data-frames]'); return el ? el.dataset.frames : null; };
  const fallback = () => { const b = $('#fw-noisy'); if (b) b.click(); };
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
  };

  const pump = async () => {
    busy = true;
    try {
      while (wanted !== null) {
        const t = wanted, base = source();
        wanted = null;
        if (!base) { fallback(); continue; }
        let r = null;
        try { r = await fetch(`${base}&t=${t}`, {credentials: 'same-origin'}); } catch (_) { r = null; }
        if (r && r.ok) await show(base, t, r);
        else fallback();  // the event path says what went wrong, if anything did
      }
    } finally {
      busy = false;
    }
  };

  window.deForwardMove = (t) => {
    if (!inSight()) return;      // the other sub-tabs follow t through their own event
    if (!source()) { fallback(); return; }
    wanted = t;
    if (!busy) pump();
  };

  // New settings (a view from the server names a new address): the picture follows the slider's t
  // as it is now, which may have moved on while that view was computed.
  let watched = null;
  const watch = () => {
    const el = $('#fw-frames');
    if (el && el !== watched) {
      watched = el;
      new MutationObserver(() => {
        const box = $('#tslider input[type=number]');
        if (box && source() && inSight()) { wanted = Number(box.value); if (!busy) pump(); }
      }).observe(el, {subtree: true, childList: true, attributes: true});
    }
    if (!el) setTimeout(watch, 500);
  };
  watch();
}
