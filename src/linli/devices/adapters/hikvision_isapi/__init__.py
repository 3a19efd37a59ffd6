"""Hikvision ISAPI alarm-server pushes (EventNotificationAlert, XML or JSON, plain or multipart)."""
