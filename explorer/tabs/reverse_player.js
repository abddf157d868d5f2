() => {
  // The Reverse tab's player: while a run plays, its frames come from the server's live feed
  // (explorer/feed.py) instead of Gradio's event messages, one request at a time, newest first.
  // Play's first view (through Gradio) names the feed in #rv-feed [data-feed]; the player then asks
  // GET de-feed/<token>?after=<seq>, shows each frame in the Reverse picture once it is decoded, and
  // writes the caption (and the frame slider) at most four times a second. The run's closing view
  // comes through Gradio again. A Pause, Stop, step, scrub or new Play ends this player at once: no
  // frame of the run it followed is shown after the click.
  //
  // Armed feeds: at rest the server names in #rv-armed a feed that can draw Play's first frame. A Play
  // click asks it at once (play=1) for the frame Play shows first, while Play's own event still goes
  // through Gradio's queue, then waits for Play's first view: it names the feed to follow (the same
  // one, taken over by the play, or another for a new run, which ends this one). A setting changed
  // since the last Play means a new run, so such a click waits for Play's own view; a setting touched
  // and left (or put back) as it was does not.
  const $ = (s) => document.querySelector(s);
  const CAPTION_MS = 250;
  let following = null;          // the token being played; null: none
  const ended = new Set();       // tokens this page ended (a click), never followed again
  let objectUrl = null;          // the blob URL shown last (freed when the next one shows)
  let early = null;              // the armed feed a Play click follows until Play's first view names one
  const asked = new Set();       // armed tokens a click has asked (a play takes them over): ask for a new one
  let before = null;             // the settings as they were when first touched since the last Play (null: untouched)
  // changes of the feed #rv-feed names (Play's views name feeds there, the closing view clears it). Only
  // the name counts: Gradio also restyles the element while Play's event is pending, which once read as
  // Play's view having landed while it was still held in the queue.
  let feedWrites = 0, writesAtClick = 0, watched = null, lastNamed = null;
  const watchFeed = () => {
    const el = $('#rv-feed');
    if (!el || el === watched) return;
    watched = el;
    lastNamed = named();
    new MutationObserver(() => {
      const now = named();
      if (now !== lastNamed) { lastNamed = now; feedWrites++; }
      markLater();  // a closing view's word binds to the picture it came with
    }).observe(el, {subtree: true, childList: true, attributes: true, characterData: true});
  };

  const named = () => { const el = $('#rv-feed [data-feed]'); return el ? el.dataset.feed : null; };
  const armedName = () => { const el = $('#rv-armed [data-armed]'); return el ? el.dataset.armed : null; };
  const live = (token) => following === token && (named() === token || (early === token && named() === null));

  const esc = (t) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  // the caption while playing is plain text with **bold** and Markdown line breaks ("  \n")
  const captionHtml = (md) => esc(md).replace(/\*\*(.+?)\*\*/g, '<strong>$1</strong>').replace(/ {2}\n/g, '<br>');
  const writeWords = (caption, frame, frames) => {
    const p = $('#rv-caption .prose p') || $('#rv-caption .prose');
    if (p) p.innerHTML = captionHtml(caption);
    // the frame slider follows too (locked while playing; the closing view sets it through Gradio)
    const top = Math.max(1, frames - 1);
    const range = $('#rv-scrub input[type=range]'), box = $('#rv-scrub input[type=number]');
    const label = $('#rv-scrub [data-testid=max-value]');
    if (range) {
      range.max = String(top); range.value = String(frame);
      range.style.setProperty('--range_progress', `${(100 * frame) / top}%`);
    }
    if (box) { box.max = String(top); box.value = String(frame); }
    // the label's own text node, not textContent: Svelte keeps updating that node when the closing view
    // sets the slider's maximum (a replaced node would keep this number for good)
    if (label && label.firstChild && label.firstChild.nodeType === Node.TEXT_NODE) label.firstChild.nodeValue = String(top);
  };

  const decoded = async (blob) => {  // a blob URL whose picture is decoded, ready to paint at once
    const url = URL.createObjectURL(blob);
    const probe = new Image();
    probe.src = url;
    try { await probe.decode(); } catch (_) { /* shown anyway: the browser decodes it on paint */ }
    return url;
  };
  const put = (img, url) => {
    img.src = url;
    if (objectUrl && objectUrl !== url) URL.revokeObjectURL(objectUrl);
    objectUrl = url;
  };
  const show = async (token, blob) => {
    const img = $('#rv-frame img');
    if (!img) return;
    const url = await decoded(blob);
    if (!live(token)) { URL.revokeObjectURL(url); return; }
    put(img, url);
  };

  // 2-D and signal models show an interactive figure at rest, and Gradio draws no hidden picture
  // component: a frame shown before Play's first view has made the picture visible is laid over
  // the figure (a cover), until that view's picture has loaded.
  let cover = null;
  const uncover = () => { if (cover) { cover.remove(); cover = null; } };
  const coverWith = (url, under = $('#rv-frame-plot')) => {
    if (!under || under.offsetParent === null) return false;
    const r = under.getBoundingClientRect();
    uncover();
    cover = document.createElement('img');
    cover.className = 'rv-cover';
    cover.alt = '';
    Object.assign(cover.style, {position: 'absolute', left: `${r.left + scrollX}px`, top: `${r.top + scrollY}px`,
      width: `${r.width}px`, height: `${r.height}px`, objectFit: 'contain', zIndex: '50',
      background: getComputedStyle(document.body).backgroundColor});
    cover.src = url;
    document.body.appendChild(cover);
    return true;
  };
  // the view's picture has painted, or the run's closing view (the feed no longer named) has drawn the
  // figure again, with no look of an earlier view laid over it (explorer/view_swap.js); or 2 s went by
  const viewDrawn = async (token) => {
    for (let waited = 0; waited < 2000; waited += 20) {
      const img = $('#rv-frame img');
      if (img && img.offsetParent !== null && img.complete && img.naturalWidth) return;
      if (named() !== token && $('#rv-frame-plot .main-svg') && !$('.de-ghost')) return;
      await new Promise((ok) => setTimeout(ok, 20));
    }
  };

  // ready: the frame (its X-Frame) the click showed from the look ahead, not shown twice
  const follow = async (token, play = false, ready = null) => {
    following = token;
    let seq = 0, wordsAt = ready === null ? 0 : performance.now();
    while (live(token)) {
      let r;
      try {
        const first = play && seq === 0 ? '&play=1' : '';
        r = await fetch(`de-feed/${token}?after=${seq}${first}`, {cache: 'no-store', credentials: 'same-origin'});
      } catch (_) {
        await new Promise((ok) => setTimeout(ok, 250));  // a dropped connection: ask again
        continue;
      }
      if (!live(token) || r.status === 410 || (r.status !== 200 && r.status !== 204)) break;
      if (r.status === 204) continue;  // nothing new within the server's wait: ask again
      seq = +r.headers.get('X-Seq');
      const blob = await r.blob();
      if (!live(token)) break;
      if (r.headers.get('X-Frame') !== ready) {  // not the frame the click showed
        if ($('#rv-frame img')) await show(token, blob);
        else {
          const url = await decoded(blob);
          if (live(token) && coverWith(url)) { if (objectUrl) URL.revokeObjectURL(objectUrl); objectUrl = url; }
          else URL.revokeObjectURL(url);
        }
      }
      ready = null;
      const now = performance.now();
      if (live(token) && now - wordsAt >= CAPTION_MS) {
        wordsAt = now;
        writeWords(decodeURIComponent(r.headers.get('X-Caption') || ''), +r.headers.get('X-Frame'),
                   +r.headers.get('X-Frames'));
      }
      if (early === token) {
        // Play's first frame came before Play's own view: let that view land (it names the feed to
        // follow, and carries the same picture) before any later frame is shown, never after one.
        // Landed: the feed #rv-feed names changed (a quick run's closing view may already have cleared it again).
        while (following === token && feedWrites === writesAtClick) await new Promise((ok) => setTimeout(ok, 20));
        early = null;
        if (cover) { await viewDrawn(token); uncover(); }
      }
    }
    if (following === token) { following = null; uncover(); }
  };

  // Image frames carry their titles and captions, drawn by the server on a white or a black ground.
  // When the picture's ground (its top-left pixel) does not match the page's theme, the page says its
  // theme (a hidden button of #rv-theme) and the server draws the frame again; later frames follow. Checked once per picture.
  let groundChecked = '';
  const checkGround = () => {
    const img = $('#rv-frame img');
    if (!img || !$('#rv-theme-dark') || following || !$('#de-ready [data-ready]') || img.src.startsWith('blob:')) return;
    if (laterHolds()) return;  // a chart's picture: drawn light whatever the theme
    if (!img.complete || !img.naturalWidth || img.offsetParent === null) return;
    const dark = document.body.classList.contains('dark');
    const key = img.src + (dark ? ' dark' : ' light');
    if (key === groundChecked) return;
    groundChecked = key;
    const c = document.createElement('canvas');
    c.width = c.height = 1;
    const g = c.getContext('2d', {willReadFrequently: true});
    g.drawImage(img, 0, 0, 1, 1, 0, 0, 1, 1);
    if ((g.getImageData(0, 0, 1, 1).data[0] < 128) === dark) return;
    $(dark ? '#rv-theme-dark' : '#rv-theme-light').click();
  };
  setInterval(checkGround, 300);

  // a new feed named by Play's first view: follow it (checked often: the first frame is already shown)
  setInterval(() => {
    const token = named();
    if (token && token !== following && !ended.has(token)) follow(token);
  }, 50);
  // Scrubbing at rest. Gradio's view of a frame is one message through its page, which costs the main
  // thread about 0.3 s on this app whatever it carries (for a 2-D run the interactive figure is also drawn
  // anew), so one view per position made a drag show a few positions a second. While the frame slider
  // moves, the page asks the session's armed feed for each position's picture instead
  // (de-feed/<token>?frame=K, one request at a time, always the newest position) and lays it over the
  // frame; once the slider has rested SETTLE_MS, it presses the hidden #rv-scrub-settle button, whose
  // event brings Gradio's view of that position, once. The cover goes when that view has landed and
  // been drawn (the frame quiet for 100 ms), or after 3 s.
  const SETTLE_MS = 150;
  let scrubWant = null, scrubBusy = false, scrubAt = 0, frameChangedAt = 0, settleTimer = null;
  const watchedFrames = new Set();
  const shownFrame = () => {  // the element that shows the frame at rest: the figure, or the picture
    for (const sel of ['#rv-frame-plot', '#rv-frame img']) {
      const el = $(sel);
      if (el && el.offsetParent !== null) return el;
    }
    return null;
  };
  const watchFrame = () => {
    for (const sel of ['#rv-frame-plot', '#rv-frame']) {
      const el = $(sel);
      if (!el || watchedFrames.has(el)) continue;
      watchedFrames.add(el);
      new MutationObserver(() => { frameChangedAt = performance.now(); }).observe(el, {subtree: true, childList: true,
                                                                                     attributes: true});
    }
  };
  const endScrub = () => { scrubWant = null; uncover(); };
  const settleSoon = () => {
    clearTimeout(settleTimer);
    settleTimer = setTimeout(() => { settleTimer = null; const b = $('#rv-scrub-settle'); if (b) b.click(); }, SETTLE_MS);
  };
  const scrubPreview = async () => {
    if (scrubBusy) return;
    scrubBusy = true;
    let shown = null;
    try {
      while (scrubWant !== null && scrubWant !== shown && !following) {
        const k = scrubWant, token = armedName();
        if (!token) break;
        const r = await fetch(`de-feed/${token}?frame=${k}`, {cache: 'no-store', credentials: 'same-origin'});
        if (r.status !== 200) break;
        const url = await decoded(await r.blob());
        const under = shownFrame();
        if (scrubWant === null || following || !under || !coverWith(url, under)) { URL.revokeObjectURL(url); break; }
        if (objectUrl) URL.revokeObjectURL(objectUrl);
        objectUrl = url;
        cover.dataset.frame = String(k);  // the position it shows
        shown = k;
      }
    } catch (_) { /* no preview: Gradio's view still comes */ } finally { scrubBusy = false; }
    if (shown === null || !cover) return;
    // the cover stays until Gradio's view of the slider's last position is drawn
    for (const t0 = performance.now(); scrubWant !== null && cover && performance.now() - t0 < 3000;) {
      await new Promise((ok) => setTimeout(ok, 30));
      if (scrubBusy) return;  // a newer position is being fetched: that call takes over
      const caption = ($('#rv-caption') || {}).textContent || '';
      const now = performance.now();
      if (settleTimer === null && caption.includes(`Frame ${scrubWant} of `) && frameChangedAt > scrubAt
          && now - frameChangedAt > 100) break;
    }
    if (!scrubBusy) endScrub();
  };
  const scrubbed = (e) => {
    const box = e.target.closest && e.target.closest('#rv-scrub input');
    if (!box) return;
    settleSoon();
    if (e.type !== 'input' || box.type !== 'range' || following) return;
    if (!shownFrame()) return;
    watchFrame();
    scrubWant = Math.round(+box.value);
    scrubAt = performance.now();
    scrubPreview();
  };
  document.addEventListener('input', scrubbed, true);
  document.addEventListener('change', scrubbed, true);

  // A 2-D or signal run ends a play on its last frame's picture, as it played, and its interactive figure
  // (hover, zoom) waits: drawing it took the main thread 0.2-0.3 s at the end of every play. The closing
  // view says so in #rv-feed (data-figure-later, a new key each time); that holds for the picture it came
  // with until the view changes. The page asks for the figure (the hidden #rv-figure button, once a key)
  // when a pointer or the keyboard comes to the view. While it holds, the body has the class
  // rv-chart-picture: the picture is a chart (the lecture's dark high contrast inverts charts).
  let later = null;          // {key, src}: the closing view's word, and the picture shown as it landed
  let figureAsked = null;    // the key the page asked the figure for
  const laterHolds = () => {
    const mark = $('#rv-feed [data-figure-later]'), img = $('#rv-frame img');
    if (!mark || !img || img.offsetParent === null) return false;  // (the word itself says no feed is named)
    if (!later || later.key !== mark.dataset.figureLater) later = {key: mark.dataset.figureLater, src: img.src};
    return img.src === later.src;
  };
  const markLater = () => { document.body.classList.toggle('rv-chart-picture', laterHolds()); };
  const askFigure = (e) => {
    if (!e.target.closest || !e.target.closest('#rv-frame') || !laterHolds() || later.key === figureAsked) return;
    const button = $('#rv-figure');
    if (!button) return;
    figureAsked = later.key;
    button.click();
  };
  for (const type of ['pointerover', 'pointermove', 'pointerdown', 'focusin']) document.addEventListener(type, askFigure, true);
  setInterval(markLater, 300);

  // anything that takes over from playback ends the player before its own request goes out
  const endPlayer = () => { if (following) ended.add(following); following = null; early = null; uncover(); };
  document.addEventListener('click', (e) => {
    if (!e.target.closest('#rv-play, #rv-pause, #rv-stop, #rv-back, #rv-fwd')) return;
    scrubWant = null;
    endPlayer();
    if (!e.target.closest('#rv-play')) return;
    if (later) figureAsked = later.key;  // a new play: the figure of the picture it leaves is not wanted
    const token = armedName();
    watchFeed();
    if (token && !changed() && !named() && !ended.has(token) && !asked.has(token) && watched) {
      early = token;
      writesAtClick = feedWrites;
      let ready = null;
      const img = $('#rv-frame img');
      if (ahead && ahead.token === token && ahead.view === viewKey() && (img || coverWith(ahead.url))) {
        ready = ahead.frame;  // shown with the click
        if (img) put(img, ahead.url); else objectUrl = ahead.url;
        writeWords(ahead.caption, +ahead.frame, ahead.frames);
        ahead = null;
      }
      follow(token, true, ready);
    }
    if (token) asked.add(token);  // either way this Play takes it over (or, for a new run, closes it)
    before = null;
  }, true);
  // a scrub ends a play (a scrub at rest keeps its own cover); another checkpoint ends a scrub too
  document.addEventListener('input', (e) => {
    if (e.target.closest('#rv-ckpt')) { scrubWant = null; endPlayer(); }
    else if (e.target.closest('#rv-scrub') && (following || early)) endPlayer();
  }, true);
  // a setting touched by the user (not the playback speed): the next Play may be a new run. The
  // settings' values are read before the first touch changes any (focus, pointerdown and keydown come
  // before an edit), so a Play after settings put back as they were still follows the armed feed at once.
  const settings = () => Array.from(document.querySelectorAll('#rv-controls input, #rv-controls textarea'))
    .filter((el) => !el.closest('#rv-speed'))
    .map((el) => (el.type === 'checkbox' || el.type === 'radio') ? String(el.checked) : el.value).join('\u0001');
  const changed = () => before !== null && settings() !== before;
  const touched = (e) => {
    const el = e.target;
    if (!e.isTrusted || !el || !el.closest || !el.closest('#rv-controls') || el.closest('#rv-speed')) return;
    if (before === null) before = settings();
  };
  for (const type of ['focusin', 'pointerdown', 'keydown', 'input']) document.addEventListener(type, touched, true);

  // Ask for an armed feed while the tab shows an image frame at rest: after each new view (the
  // session may be a new one, as a restored link makes it) and after a Play has taken the last one.
  // With a usable armed feed, fetch the frame Play would show first (peek=1) and keep it decoded, so
  // the click shows it with no request at all; fetched again whenever the view changes.
  let armedFor = '', armAskedAt = -1e9;
  let ahead = null, peeking = false;  // {token, view, url, frame, frames, caption}: the look ahead
  const viewKey = () => { const img = $('#rv-frame img'); return (img ? img.src : '') + '|' + (($('#rv-caption') || {}).textContent || ''); };
  const peek = async (token, view) => {
    peeking = true;
    try {
      const r = await fetch(`de-feed/${token}?peek=1`, {cache: 'no-store', credentials: 'same-origin'});
      if (r.status !== 200) return;
      const url = await decoded(await r.blob());
      if (ahead) URL.revokeObjectURL(ahead.url);
      ahead = {token, view, url, frame: r.headers.get('X-Frame'), frames: +r.headers.get('X-Frames'),
               caption: decodeURIComponent(r.headers.get('X-Caption') || '')};
    } catch (_) { /* none ready: the click asks the feed instead */ } finally { peeking = false; }
  };
  let peekedFor = '';
  const arm = () => {
    const shown = $('#rv-frame img') || $('#rv-frame-plot'), button = $('#rv-arm');
    if (following || !shown || !button || !$('#de-ready [data-ready]') || shown.offsetParent === null) return;
    const token = armedName();
    const view = viewKey();
    if (token && !asked.has(token) && view === armedFor) {
      const key = token + ' ' + view;
      if (!changed() && !peeking && peekedFor !== key) { peekedFor = key; peek(token, view); }
      return;
    }
    if (performance.now() - armAskedAt < 1000) return;
    armAskedAt = performance.now();
    armedFor = view;
    button.click();
  };
  setInterval(arm, 300);
}
