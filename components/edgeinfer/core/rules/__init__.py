"""Local decisions: rules over results that raise alerts within milliseconds, on the device."""
