"""The top room: what wires every concern together (the web app factory and its lifespan,
the runtime's resources, the server, ``hearth check``). Nothing below imports from here."""
