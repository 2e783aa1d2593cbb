{
  "targets": [
    {
      "target_name": "fdstore",
      "sources": ["addon.c", "poll.c", "scm.c", "sys.c", "dedupe.c", "fdinfo.c", "activation.c", "keeper.c"],
      "include_dirs": ["../include"],
      "cflags": ["-Wall", "-Wextra", "-O2"],
      "cflags_c": ["-std=gnu11"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
