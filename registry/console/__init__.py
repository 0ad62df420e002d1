"""The web console: server-rendered pages under ``/console/`` on the registry/admin app.

Each area of the console is a controller module here with its templates in its own directory
under ``templates/`` and its scripts in ``static/``; ``pages.py`` lists the
controllers, one line each, and ``routes.py`` serves them behind the console's session. The
pages call the services the JSON API calls (the app's dependencies). See ``README.md``.
"""
