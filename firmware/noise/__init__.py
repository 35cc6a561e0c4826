"""The noise node's sound level meter (IEC 61672-1 style), computed on the ESP32.

An INMP441 on I2S (24-bit samples in 32-bit slots) feeds blocks of raw words to
``NoiseMeter.feed``; once per period (default 60 s) it returns a ``NoiseReading`` with
LAeq, LAFmax, LAFmin, LA10, LA50 and LA90 in dB(A) and the ``clip`` / ``below_floor`` /
``sensor_missing`` flags. Audio is never stored or sent: only these levels leave the meter.

    from noise.meter import NoiseConfig, NoiseMeter
    from noise.streams import SlotSource, check_slots
    from noise.source import open_i2s

    config = NoiseConfig(rate=48000, period_s=60, sensitivity_dbfs=-26.0, offset_db=cal)
    stereo = open_i2s(0, sck=SCK, ws=WS, sd=SD, rate=48000, stereo=True)
    left, right = check_slots(stereo, bytearray(4096))   # bring-up: which slot talks
    mic = SlotSource(stereo, 1 if right and not left else 0, config.block)
    meter = NoiseMeter(config)
    buf = bytearray(4 * config.block)                     # allocated once
    while True:                                           # its own task / thread
        n = mic.readinto(buf)
        reading = meter.feed(buf, n >> 2)
        if reading is not None:
            publish(reading.fields(), reading.flags())

Modules: ``weighting`` (A-weighting design, plain bilinear transform, fixed point),
``kernel`` (the per-sample viper loop), ``fast`` (per sub-block, viper: Fast time
weighting, LAFmax/LAFmin, energy sum, percentile histogram), ``meter`` (configuration,
calibration, the period's results), ``task`` (the node's asyncio task and noise payload),
``record`` (a calibration recording to a WAV file),
``source`` (``machine.I2S``, the slot the node reads), ``streams`` (sources for tools and
tests: a file, a blocking read, the slot check of one block), ``node`` (the node's
``config.json`` section and bring-up: it reads the bus in stereo and keeps the slot that
talks, since some ESP-IDF versions return zeros for a mono read or swap the slots),
``hostrun`` (the meter over
standard input, for ``commons noise analyze`` on the unix port).

Sample rate: 48 kHz (44.1 kHz also supported). Plain-BLT A-weighting meets class 1 at
both (REFERENCE.md 1.5) and fails it at 32 kHz and below, and the loop is cheap enough
that the lower rates would save nothing worth the accuracy.

Cycle budget (docs/noise-performance.md): 240 MHz / 48 kHz = 5000 cycles per sample.
The viper loop is about 125 integer operations per sample, the per-sub-block stage a few
hundred instructions per 120 samples; no floats and no allocation between readings.
Measured on the unix port and estimated for the ESP32 (15-20 % of one core) there.

Building: ``kernel`` and ``fast`` are machine code (``@micropython.viper``), so mpy-cross
needs the target architecture: ``mpy-cross -march=xtensawin`` for the ESP32 (``make
firmware`` does this), ``-march=x64`` for the unix port; copied as source, the ESP32
compiles them on import.

RAM: importing ``meter``, ``task`` and ``source`` costs about 25 KB of heap on the 64-bit
unix port (roughly half on the ESP32, plus about 8 KB of native code for ``kernel`` and
``fast``); one meter with its block buffer about 12 KB on either (the 1400-bin histogram
5.6 KB, the 1024-word block 4 KB, state and tables 1.5 KB).
"""
