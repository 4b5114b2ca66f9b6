// The developer page: presses the simulated panel's lock button and shows its two lights,
// read from the box twice a second (the same state a real panel's LEDs would show).
import { t, applyTranslations, bindSwitcher, onLangChange } from './i18n.js';

const $ = (id) => document.getElementById(id);
let leds = null;

function render() {
  if (!leds) return;
  $('status-led').dataset.state = leds.status_led;
  $('status-text').textContent = t(`dev.led.${leds.status_led}`);
  $('lock-led').dataset.state = leds.lock_led ? 'on' : 'off';
  $('lock-text').textContent = t(leds.lock_led ? 'dev.on' : 'dev.off');
}

function fail(reason) {
  const el = $('dev-error');
  el.textContent = t('dev.unavailable', { reason });
  el.hidden = false;
}

async function reason(res) {
  try {
    return (await res.json()).error ?? `HTTP ${res.status}`;
  } catch {
    return `HTTP ${res.status}`;
  }
}

async function poll() {
  try {
    const res = await fetch('/api/dev/panel', { credentials: 'same-origin', cache: 'no-store' });
    if (res.status === 401) {
      location.replace('/login');
      return;
    }
    if (!res.ok) {
      // Not an admin, or a box with a real panel: nothing to poll.
      fail(await reason(res));
      $('press').disabled = true;
      return;
    }
    leds = await res.json();
    $('dev-error').hidden = true;
    render();
  } catch {
    fail(t('act.network'));
  }
  setTimeout(poll, 500);
}

$('press').addEventListener('click', async () => {
  try {
    const res = await fetch('/api/dev/panel/press', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: '{}',
    });
    if (!res.ok) fail(await reason(res));
  } catch {
    fail(t('act.network'));
  }
});

applyTranslations();
bindSwitcher($('lang-switch'));
onLangChange(render);
poll();
