"""edgeinfer: one inference core for camera and sensor fleets, wrapped for Greengrass v2 and IoT Edge."""

__version__ = "0.1.0"
