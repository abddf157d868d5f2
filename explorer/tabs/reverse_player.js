() => {
  // The Reverse tab's player: while a run plays, its frames come from the server's live feed
  // (explorer/feed.py) instead of Gradio's event messages, one request at a time, newest first.
  // Play's first view (through Gradio) names the feed in #rv-feed [data-feed]; the player then asks
  // GET de-feed/<token>?after=<seq>, shows each frame in the Reverse picture once it is decoded, and
  // writes the caption (and the frame slider) at most four times a second. The run's closing view
  // comes through Gradio again. A Pause, Stop, step, scrub or new Play ends this player at once: no
  // frame of the run it followed is shown after the click.
  const $ = (s) => document.querySelector(s);
  const CAPTION_MS = 250;
  let following = null;          // the token being played; null: none
  const ended = new Set();       // tokens this page ended (a click), never followed again
  let objectUrl = null;          // the blob URL shown last (freed when the next one shows)

  const named = () => { const el = $('#rv-feed [data-feed]'); return el ? el.dataset.feed : null; };
  const live = (token) => following === token && named() === token;

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

  const show = async (token, blob) => {
    const img = $('#rv-frame img');
    if (!img) return;
    const url = URL.createObjectURL(blob);
    const probe = new Image();
    probe.src = url;
    try { await probe.decode(); } catch (_) { /* shown anyway: the browser decodes it on paint */ }
    if (!live(token)) { URL.revokeObjectURL(url); return; }
    img.src = url;
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = url;
  };

  const follow = async (token) => {
    following = token;
    let seq = 0, wordsAt = 0;
    while (live(token)) {
      let r;
      try {
        r = await fetch(`de-feed/${token}?after=${seq}`, {cache: 'no-store', credentials: 'same-origin'});
      } catch (_) {
        await new Promise((ok) => setTimeout(ok, 250));  // a dropped connection: ask again
        continue;
      }
      if (!live(token) || r.status === 410 || (r.status !== 200 && r.status !== 204)) break;
      if (r.status === 204) continue;  // nothing new within the server's wait: ask again
      seq = +r.headers.get('X-Seq');
      const blob = await r.blob();
      if (!live(token)) break;
      await show(token, blob);
      const now = performance.now();
      if (live(token) && now - wordsAt >= CAPTION_MS) {
        wordsAt = now;
        writeWords(decodeURIComponent(r.headers.get('X-Caption') || ''), +r.headers.get('X-Frame'),
                   +r.headers.get('X-Frames'));
      }
    }
    if (following === token) following = null;
  };

  // Image frames carry their titles and captions, drawn by the server on a white or a black ground.
  // When the picture's ground (its top-left pixel) does not match the page's theme, the page says its
  // theme (a hidden button of #rv-theme) and the server draws the frame again; later frames follow. Checked once per picture.
  let groundChecked = '';
  const checkGround = () => {
    const img = $('#rv-frame img');
    if (!img || !$('#rv-theme-dark') || following || !$('#de-ready [data-ready]') || img.src.startsWith('blob:')) return;
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
  // anything that takes over from playback ends the player before its own request goes out
  const endPlayer = () => { if (following) ended.add(following); following = null; };
  document.addEventListener('click', (e) => {
    if (e.target.closest('#rv-play, #rv-pause, #rv-stop, #rv-back, #rv-fwd')) endPlayer();
  }, true);
  document.addEventListener('input', (e) => { if (e.target.closest('#rv-scrub, #rv-ckpt')) endPlayer(); }, true);
}
