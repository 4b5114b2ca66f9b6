// Runs the Lanterne panel firmware ELF in the rp2040js RP2040 emulator, paced to wall-clock
// time, with the firmware's USB CDC-ACM serial bridged to this process's stdin/stdout.
//
//   node firmware/emulator/run-panel.mjs <firmware.elf> [--control <unix-socket-path>]
//
// stdout/stdin: the panel's serial bytes (exactly what the box would read/write on
//               /dev/lanterne-panel).
// stderr:       one line per event: "usb configured", "pwm lock=<0..1000> status=<0..1000>"
//               whenever the LED duty levels change, "rtt <hex>" for raw defmt log bytes.
// --control:    a Unix socket accepting lines "button down" / "button up" / "freeze" (the CPU
//                stops, everything else runs on, until the watchdog resets the chip).
// --uf2 <file>:  load flash from this UF2 (as scripts/firmware-uf2.sh made it) instead of the
//                ELF's segments; the ELF still supplies symbols. Proves the UF2 boots.
// --rtt <file>:  append the raw defmt (RTT channel 0) bytes to <file>; decode with
//                `defmt-print -e <firmware.elf> < <file>`.
//
// No boot ROM is loaded (it is not redistributed with rp2040js): the core starts directly at
// the firmware's vector table, skipping the second-stage boot loader, which only configures
// the flash interface that the emulator does not model.

import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { appendFileSync, unlinkSync } from 'node:fs';
import { Simulator, USBCDC, createSetupPacket, DataDirection, SetupType, SetupRecipient } from 'rp2040js';

const args = process.argv.slice(2);
const elfPath = args[0];
const option = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : null);
const controlPath = option('--control');
const rttPath = option('--rtt');
const uf2Path = option('--uf2');
if (!elfPath) {
  console.error('usage: run-panel.mjs <firmware.elf> [--control <socket>]');
  process.exit(2);
}

const FLASH_START = 0x10000000;
const VECTOR_TABLE = 0x10000100; // after the 256-byte boot2 block (firmware/memory.x)
const PIN_BUTTON = 14; // firmware/src/board.rs
const PWM_SLICE0_CC = 0x4005000c; // compare A (lock LED) low half, B (status LED) high half

// --- ELF: loadable segments and the RTT control block's address ---------------------------
const elf = readFileSync(elfPath);
if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 1 || elf[5] !== 1) {
  throw new Error('expected a 32-bit little-endian ELF');
}
const phoff = elf.readUInt32LE(28);
const shoff = elf.readUInt32LE(32);
const phentsize = elf.readUInt16LE(42);
const phnum = elf.readUInt16LE(44);
const shentsize = elf.readUInt16LE(46);
const shnum = elf.readUInt16LE(48);

function findSymbol(name) {
  for (let i = 0; i < shnum; i++) {
    const sh = shoff + i * shentsize;
    if (elf.readUInt32LE(sh + 4) !== 2) continue; // SHT_SYMTAB
    const symOff = elf.readUInt32LE(sh + 16);
    const symSize = elf.readUInt32LE(sh + 20);
    const strtab = shoff + elf.readUInt32LE(sh + 24) * shentsize;
    const strOff = elf.readUInt32LE(strtab + 16);
    for (let s = symOff; s < symOff + symSize; s += 16) {
      let n = strOff + elf.readUInt32LE(s);
      let end = n;
      while (elf[end] !== 0) end++;
      if (elf.toString('latin1', n, end) === name) return elf.readUInt32LE(s + 4);
    }
  }
  return null;
}

const sim = new Simulator();
const mcu = sim.rp2040;
mcu.logger = { debug() {}, info() {}, warn(c, m) { console.error(`emu warn ${c}: ${m}`); }, error(c, m) { console.error(`emu error ${c}: ${m}`); } };
function loadUf2(path) {
  const uf2 = readFileSync(path);
  if (uf2.length === 0 || uf2.length % 512 !== 0) throw new Error('UF2 size is not a multiple of 512');
  for (let off = 0; off < uf2.length; off += 512) {
    const magic = [uf2.readUInt32LE(off), uf2.readUInt32LE(off + 4), uf2.readUInt32LE(off + 508)];
    if (magic[0] !== 0x0a324655 || magic[1] !== 0x9e5d5157 || magic[2] !== 0x0ab16f30) {
      throw new Error(`UF2 block at ${off} has bad magic`);
    }
    if (uf2.readUInt32LE(off + 28) !== 0xe48bff56) throw new Error('UF2 block is not for the RP2040');
    const target = uf2.readUInt32LE(off + 12);
    const size = uf2.readUInt32LE(off + 16);
    mcu.flash.set(uf2.subarray(off + 32, off + 32 + size), target - FLASH_START);
  }
}
if (uf2Path) loadUf2(uf2Path);
for (let i = 0; i < phnum && !uf2Path; i++) {
  const ph = phoff + i * phentsize;
  const type = elf.readUInt32LE(ph);
  const offset = elf.readUInt32LE(ph + 4);
  const paddr = elf.readUInt32LE(ph + 12);
  const filesz = elf.readUInt32LE(ph + 16);
  if (type !== 1 || filesz === 0) continue;
  if (paddr < FLASH_START) throw new Error(`segment at ${paddr.toString(16)} is not in flash`);
  mcu.flash.set(elf.subarray(offset, offset + filesz), paddr - FLASH_START);
}
const rttAddress = findSymbol('_SEGGER_RTT');

mcu.core.VTOR = VECTOR_TABLE;
mcu.core.reset();

// --- watchdog --------------------------------------------------------------------------------
// "freeze" (control socket) stops the CPU while time, timers, PWM and the watchdog run on: a
// wedged firmware. rp2040js only logs a watchdog expiry, so perform the reset here: the core
// restarts from the vector table (peripherals keep their registers, which the firmware
// re-initialises; WATCHDOG.REASON says TIMER) and the USB host re-enumerates.
let frozen = false;
let resetPending = false;
// rp2040js has no named field for it; it sits in the peripheral map at its base address.
const watchdog = mcu.peripherals[0x40058];
watchdog.onWatchdogTrigger = () => {
  // A chip reset disables the watchdog until the firmware starts it again; stopping it here
  // also keeps rp2040js's expired countdown from re-firing at the same instant forever.
  watchdog.enable = false;
  watchdog.timer.enable = false;
  watchdog.alarm.enable = false;
  resetPending = true;
};
function watchdogReset() {
  resetPending = false;
  frozen = false;
  const core = mcu.core;
  core.registers.fill(0);
  Object.assign(core, {
    waiting: false, eventRegistered: false, PM: false, SPSEL: 0, nPRIV: false,
    currentMode: 0, IPSR: 0, pendingInterrupts: 0, enabledInterrupts: 0,
    pendingNMI: false, pendingPendSV: false, pendingSVCall: false, pendingSystick: false,
    interruptsUpdated: false, SHPR2: 0, SHPR3: 0, VTOR: VECTOR_TABLE,
  });
  core.interruptPriorities = [0xffffffff, 0, 0, 0];
  core.reset();
  attachUsbHost();
  console.error('watchdog reset');
}

// --- button ------------------------------------------------------------------------------
// Pulled up, closed to ground when pressed.
mcu.gpio[PIN_BUTTON].setInputValue(true);
if (controlPath) {
  try { unlinkSync(controlPath); } catch {}
  createServer((conn) => {
    let pending = '';
    conn.on('data', (chunk) => {
      pending += chunk.toString();
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl).trim();
        pending = pending.slice(nl + 1);
        if (line === 'freeze') {
          frozen = true;
          console.error('cpu frozen');
        } else if (line === 'button down') mcu.gpio[PIN_BUTTON].setInputValue(false);
        else if (line === 'button up') mcu.gpio[PIN_BUTTON].setInputValue(true);
        else console.error(`control: unknown command ${JSON.stringify(line)}`);
      }
    });
  }).listen(controlPath, () => console.error('control ready'));
}

// --- USB ---------------------------------------------------------------------------------
// Two emulator gaps around OUT transfers (host -> panel), bridged here:
// * rp2040js clears a buffer's AVAILABLE bit as soon as the firmware arms it, where real
//   hardware keeps it set until the host has filled the buffer; embassy-rp polls that bit, so
//   it would take the empty buffer for a received packet.
// * its CDC host answers every OUT transfer at once, with zero bytes when it has nothing to
//   send, where a real host NAKs until it has data.
// So: keep AVAILABLE set while a transfer is armed and complete it only when stdin has bytes.
const EP0_OUT_BUFFER_CONTROL = 0x84;
const BUF_AVAILABLE = 1 << 10;
function setAvailable(endpoint, on) {
  const offset = EP0_OUT_BUFFER_CONTROL + endpoint * 8;
  const value = mcu.usbDPRAMView.getUint32(offset, true);
  mcu.usbDPRAMView.setUint32(offset, on ? value | BUF_AVAILABLE : value & ~BUF_AVAILABLE, true);
}
let cdc = null;
let pendingRead = null;
function completeRead() {
  if (!pendingRead || cdc.txFIFO.itemCount === 0) return;
  const { endpoint, size } = pendingRead;
  pendingRead = null;
  const buffer = new Uint8Array(Math.min(size, cdc.txFIFO.itemCount));
  for (let i = 0; i < buffer.length; i++) buffer[i] = cdc.txFIFO.pull();
  setAvailable(endpoint, false);
  mcu.usbCtrl.finishRead(endpoint, buffer);
}
// A fresh emulated host, as when the panel re-enumerates after a reset.
function attachUsbHost() {
  cdc = new USBCDC(mcu.usbCtrl);
  pendingRead = null;
  cdc.onDeviceConnected = () => {
    // rp2040js addresses SET_CONTROL_LINE_STATE to the device; the CDC spec (and
    // embassy-usb) want it addressed to the communication interface. Raise DTR|RTS properly.
    mcu.usbCtrl.sendSetupPacket(createSetupPacket({
      dataDirection: DataDirection.HostToDevice,
      type: SetupType.Class,
      recipient: SetupRecipient.Interface,
      bRequest: 0x22,
      wValue: 0x3,
      wIndex: 0,
      wLength: 0,
    }));
    console.error('usb configured');
  };
  cdc.onSerialData = (buffer) => process.stdout.write(Buffer.from(buffer));
  mcu.usbCtrl.onEndpointRead = (endpoint, size) => {
    if (endpoint !== cdc.outEndpoint) return;
    setAvailable(endpoint, true);
    pendingRead = { endpoint, size };
    completeRead();
  };
}
attachUsbHost();
process.stdin.on('data', (chunk) => {
  for (const b of chunk) cdc.sendSerialByte(b);
  completeRead();
});
process.stdin.on('end', () => process.exit(0));

// --- observation ---------------------------------------------------------------------------
let lastPwm = '';
function reportPwm() {
  const cc = mcu.readUint32(PWM_SLICE0_CC) >>> 0;
  const line = `pwm lock=${cc & 0xffff} status=${cc >>> 16}`;
  if (line !== lastPwm) {
    lastPwm = line;
    console.error(line);
  }
}

function drainRtt() {
  // SEGGER RTT control block: id[16], max up, max down, then up buffer 0:
  // name, buffer, size, write offset, read offset, flags.
  if (rttAddress == null) return;
  const up = rttAddress + 24;
  const buf = mcu.readUint32(up + 4) >>> 0;
  const size = mcu.readUint32(up + 8) >>> 0;
  const wr = mcu.readUint32(up + 12) >>> 0;
  let rd = mcu.readUint32(up + 16) >>> 0;
  if (size === 0 || wr === rd) return;
  const bytes = [];
  while (rd !== wr) {
    bytes.push(mcu.readUint8(buf + rd));
    rd = (rd + 1) % size;
  }
  mcu.writeUint32(up + 16, rd);
  if (rttPath) appendFileSync(rttPath, Buffer.from(bytes));
  else console.error(`rtt ${Buffer.from(bytes).toString('hex')}`);
}

// --- run, paced to the wall clock ------------------------------------------------------------
const clock = sim.clock;
const NANOS_PER_CYCLE = 8; // 125 MHz
const t0 = process.hrtime.bigint();
let traceCount = 0;
function run() {
  const wall = Number(process.hrtime.bigint() - t0);
  let budget = 2_000_000;
  while (clock.nanos < wall && budget-- > 0) {
    if (resetPending) watchdogReset();
    if (frozen) {
      const next = clock.nanosToNextAlarm;
      clock.tick(next > 0 ? Math.min(next, wall - clock.nanos) : wall - clock.nanos);
    } else if (mcu.core.waiting) {
      const next = clock.nanosToNextAlarm;
      // Sleep until the next timer alarm, but never past "now".
      clock.tick(next > 0 ? Math.min(next, wall - clock.nanos) : wall - clock.nanos);
    } else {
      clock.tick(mcu.core.executeInstruction() * NANOS_PER_CYCLE);
    }
  }
  reportPwm();
  drainRtt();
  if (process.env.EMU_TRACE && ++traceCount % 500 === 0) {
    console.error(`trace frozen=${frozen} pc=${mcu.core.PC.toString(16)} waiting=${mcu.core.waiting} t=${(clock.nanos / 1e6).toFixed(1)}ms wall=${(wall / 1e6).toFixed(1)}ms`);
  }
  setTimeout(run, 1);
}
run();
