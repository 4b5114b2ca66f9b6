//! Lanterne front-panel firmware for the RP2040.
//!
//! Thin wiring around `lanterne_panel_logic::Panel`, which holds all behaviour and is tested on
//! the host. Three tasks:
//!
//! * `main` — every [`TICK`]: samples the lock button, hands received frames to the panel,
//!   renders both LEDs through PWM, queues outgoing messages and feeds the watchdog. It never
//!   awaits anything but its ticker, so a stuck USB host cannot stall the LEDs.
//! * `usb_rx` — reads CDC-ACM packets and decodes frames (bounded, resynchronising decoder).
//! * `usb_tx` — writes queued messages, dropping them when no host has the port open.
//!
//! If the box stops talking, the panel logic switches the status LED to the fault pattern; if
//! this firmware itself hangs, the hardware watchdog reboots it, and it comes back showing the
//! fault pattern until the box speaks again. Pins live in [`board`].

#![no_std]
#![no_main]

mod board;

use core::sync::atomic::{AtomicBool, Ordering};

use defmt::{info, warn};
use defmt_rtt as _;
use embassy_executor::Spawner;
use embassy_rp::bind_interrupts;
use embassy_rp::gpio::{Input, Pull};
use embassy_rp::peripherals::USB;
use embassy_rp::pwm::{self, Pwm};
use embassy_rp::usb::{Driver, InterruptHandler};
use embassy_rp::watchdog::{ResetReason, Watchdog};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::channel::Channel;
use embassy_time::{with_timeout, Duration, Instant, Ticker};
use embassy_usb::class::cdc_acm::{CdcAcmClass, Receiver, Sender, State};
use embassy_usb::UsbDevice;
use lanterne_panel_logic::panel::Transition;
use lanterne_panel_logic::pattern::LEVEL_MAX;
use lanterne_panel_logic::{ButtonConfig, LedLevels, Panel, PanelConfig};
use lanterne_panel_protocol::{
    encode, BoxToPanel, DecodeError, FirmwareVersion, FrameDecoder, PanelToBox,
};
use panic_probe as _;
use static_cell::StaticCell;

use crate::board::Board;

bind_interrupts!(struct Irqs {
    USBCTRL_IRQ => InterruptHandler<USB>;
});

/// Button sampling and LED refresh period: 5 ms gives 4 samples per debounce window and
/// 200 Hz pattern updates, smooth enough for breathing.
const TICK: Duration = Duration::from_millis(5);

/// The main loop feeds the watchdog every tick; 200 missed ticks means it is wedged.
const WATCHDOG_TIMEOUT: Duration = Duration::from_secs(1);

/// A write the host does not collect within this time is dropped: stale presses are useless.
const WRITE_TIMEOUT: Duration = Duration::from_millis(100);

/// USB full-speed bulk packet size.
const PACKET: usize = 64;

/// PWM: 125 MHz / 125 / 1000 = 1 kHz, far above visible flicker; `top + 1 == LEVEL_MAX` so a
/// level maps straight onto the compare register.
const PWM_DIVIDER: u8 = 125;
const PWM_TOP: u16 = LEVEL_MAX - 1;

const FIRMWARE: FirmwareVersion = FirmwareVersion {
    major: parse_u8(env!("CARGO_PKG_VERSION_MAJOR")),
    minor: parse_u8(env!("CARGO_PKG_VERSION_MINOR")),
    patch: parse_u8(env!("CARGO_PKG_VERSION_PATCH")),
};

/// The panel's behaviour settings. The box heartbeats every second (lanterne-panel's
/// `SerialConfig`), so 3 s of silence means two heartbeats were lost: show the fault pattern.
const PANEL_CONFIG: PanelConfig = PanelConfig {
    button: ButtonConfig {
        debounce_ms: 20,
        long_press_ms: 1500,
    },
    heartbeat_timeout_ms: 3000,
    firmware: FIRMWARE,
};

/// Frames (or decode failures) from the box, for the main loop.
static FROM_BOX: Channel<CriticalSectionRawMutex, Result<BoxToPanel, DecodeError>, 8> =
    Channel::new();
/// Messages for the box, for the USB writer.
static TO_BOX: Channel<CriticalSectionRawMutex, PanelToBox, 8> = Channel::new();
/// Some host has the serial port open (DTR raised).
static HOST_LISTENING: AtomicBool = AtomicBool::new(false);

type UsbDriver = Driver<'static, USB>;

#[embassy_executor::main(
    executor = "embassy_rp::executor::Executor",
    entry = "cortex_m_rt::entry"
)]
async fn main(spawner: Spawner) {
    let board = Board::new(embassy_rp::init(Default::default()));
    info!("lanterne panel firmware {}", FIRMWARE);

    let mut watchdog = Watchdog::new(board.watchdog);
    let watchdog_rebooted = matches!(watchdog.reset_reason(), Some(ResetReason::TimedOut));
    watchdog.start(WATCHDOG_TIMEOUT);

    let mut pwm_cfg = pwm::Config::default();
    pwm_cfg.top = PWM_TOP;
    pwm_cfg.divider = PWM_DIVIDER.into();
    // Duty starts at zero; the first tick, 5 ms later, shows the logic's boot pattern (fault).
    let mut leds = Pwm::new_output_ab(
        board.led_pwm,
        board.lock_led,
        board.status_led,
        pwm_cfg.clone(),
    );
    let button = Input::new(board.button, Pull::Up);

    let (tx, rx) = usb_serial(board.usb, spawner);
    spawner.spawn(defmt::unwrap!(usb_rx(rx)));
    spawner.spawn(defmt::unwrap!(usb_tx(tx)));

    let mut panel = Panel::new(PANEL_CONFIG);
    if watchdog_rebooted {
        warn!("previous boot ended in a watchdog reset");
        panel.note_watchdog_reset();
    }

    let mut ticker = Ticker::every(TICK);
    let mut shown = LedLevels {
        lock: u16::MAX,
        status: u16::MAX,
    };
    loop {
        let now = Instant::now().as_millis();

        while let Ok(frame) = FROM_BOX.try_receive() {
            if let Err(e) = &frame {
                warn!("dropped frame from box: {}", e);
            }
            panel.on_frame(now, frame);
        }

        let pressed = button.is_low() == board::BUTTON_ACTIVE_LOW;
        if let Some(event) = panel.on_button(now, pressed) {
            info!("button: {}", event);
        }

        let (levels, transition) = panel.tick(now);
        match transition {
            Some(Transition::BoxHeard) => info!("box heard"),
            Some(Transition::BoxLost) => warn!("box silent: showing fault pattern"),
            None => {}
        }
        if levels != shown {
            pwm_cfg.compare_a = levels.lock;
            pwm_cfg.compare_b = levels.status;
            leds.set_config(&pwm_cfg);
            shown = levels;
        }

        if HOST_LISTENING.load(Ordering::Relaxed) {
            while !TO_BOX.is_full() {
                match panel.pop_outgoing() {
                    Some(msg) => {
                        // Cannot fail: we checked for room and are the only sender.
                        let _ = TO_BOX.try_send(msg);
                    }
                    None => break,
                }
            }
        } else {
            // Nobody is listening; queued presses would only surprise the next listener.
            panel.discard_outgoing();
        }

        watchdog.feed(WATCHDOG_TIMEOUT);
        ticker.next().await;
    }
}

/// Builds the USB device with one CDC-ACM function and starts it.
fn usb_serial(
    usb: embassy_rp::Peri<'static, USB>,
    spawner: Spawner,
) -> (Sender<'static, UsbDriver>, Receiver<'static, UsbDriver>) {
    let driver = Driver::new(usb, Irqs);
    let mut config = embassy_usb::Config::new(board::USB_VID, board::USB_PID);
    config.manufacturer = Some(board::USB_MANUFACTURER);
    config.product = Some(board::USB_PRODUCT);
    config.serial_number = Some("1");
    config.max_power = 100;
    config.max_packet_size_0 = 64;

    static CONFIG_DESCRIPTOR: StaticCell<[u8; 256]> = StaticCell::new();
    static BOS_DESCRIPTOR: StaticCell<[u8; 256]> = StaticCell::new();
    static CONTROL_BUF: StaticCell<[u8; 64]> = StaticCell::new();
    static CDC_STATE: StaticCell<State> = StaticCell::new();

    let mut builder = embassy_usb::Builder::new(
        driver,
        config,
        CONFIG_DESCRIPTOR.init([0; 256]),
        BOS_DESCRIPTOR.init([0; 256]),
        &mut [],
        CONTROL_BUF.init([0; 64]),
    );
    let class = CdcAcmClass::new(&mut builder, CDC_STATE.init(State::new()), PACKET as u16);
    spawner.spawn(defmt::unwrap!(usb_device(builder.build())));
    class.split()
}

#[embassy_executor::task]
async fn usb_device(mut usb: UsbDevice<'static, UsbDriver>) -> ! {
    usb.run().await
}

#[embassy_executor::task]
async fn usb_rx(mut rx: Receiver<'static, UsbDriver>) -> ! {
    let mut decoder = FrameDecoder::<BoxToPanel>::new();
    let mut buf = [0u8; PACKET];
    loop {
        rx.wait_connection().await;
        info!("USB configured");
        // A partial frame from before a re-enumeration must not be glued to new bytes.
        decoder.reset();
        loop {
            let read = with_timeout(Duration::from_millis(250), rx.read_packet(&mut buf)).await;
            // Refresh before handing frames over, so the answer to the host's first request
            // (sent right after it raised DTR) is not discarded as "nobody listening". The
            // timeout exists only to notice DTR changes while the host is quiet.
            HOST_LISTENING.store(rx.dtr(), Ordering::Relaxed);
            match read {
                Err(_) => continue,
                Ok(Ok(n)) => {
                    for frame in decoder.feed(&buf[..n]) {
                        FROM_BOX.send(frame).await;
                    }
                }
                Ok(Err(_)) => break,
            }
        }
        HOST_LISTENING.store(false, Ordering::Relaxed);
        info!("USB disconnected");
    }
}

#[embassy_executor::task]
async fn usb_tx(mut tx: Sender<'static, UsbDriver>) -> ! {
    loop {
        let msg = TO_BOX.receive().await;
        if !tx.dtr() {
            continue;
        }
        let frame = match encode(&msg) {
            Ok(frame) => frame,
            Err(e) => {
                warn!("cannot encode {}: {}", msg, e);
                continue;
            }
        };
        // Frames are shorter than one packet (MAX_FRAME_LEN < 64), so one write is a frame and
        // no zero-length packet is needed.
        match with_timeout(WRITE_TIMEOUT, tx.write_packet(&frame)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => warn!("USB write failed; dropped {}", msg),
            Err(_) => warn!("host not reading; dropped {}", msg),
        }
    }
}

/// `env!` gives strings; the version must be a compile-time constant.
const fn parse_u8(s: &str) -> u8 {
    let bytes = s.as_bytes();
    let mut value: u32 = 0;
    let mut i = 0;
    while i < bytes.len() {
        let digit = bytes[i];
        assert!(digit.is_ascii_digit(), "version component is not a number");
        value = value * 10 + (digit - b'0') as u32;
        assert!(value <= u8::MAX as u32, "version component exceeds 255");
        i += 1;
    }
    value as u8
}

// Compile-time proof that a frame fits in one USB packet (see `usb_tx`).
const _: () = assert!(lanterne_panel_protocol::MAX_FRAME_LEN < PACKET);
