"""Sensor drivers of the air-quality node.

Each chip module splits a pure part (bytes in, reading out, checked for header,
length and checksum) from a thin transport over the bus object it is given, so
the same code runs on the ESP32 and, against byte-level fakes, on the
MicroPython unix port (tests/firmware).

    uart = machine.UART(2, 9600, rx=RX, tx=TX, rxbuf=1024)  # pins: hardware pin map
    dust = sds011.SDS011(uart)
    dust.setup()                      # SensorMissing (NoReply) when silent
    for ms in dust.cycle():           # in an asyncio task
        await asyncio.sleep_ms(ms)
    reading = dust.last               # pm2_5, pm10 in ug/m3

    air = bme280.BME280(bme280.BME280I2C(machine.I2C(0, scl=SCL, sda=SDA)))
    air.read()                        # temperature degC, humidity %RH, pressure hPa

RAM: importing sds011, pms5003 and bme280 takes about 38 KB of heap on the
64-bit unix port, roughly half that on the ESP32 (less when frozen into the
firmware); one instance of each about 4.5 KB (unix). The sampling paths
allocate nothing (checked with the heap locked); the BME280 compensation
allocates, being big-integer arithmetic on a 32-bit port.
"""
