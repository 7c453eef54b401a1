#!/bin/sh
# SageMaker starts the container with one argument: `serve` (endpoints) or `train` (training
# jobs). Anything else is run as given, so processing jobs and debugging work unchanged.
set -eu
case "${1:-}" in
  serve) shift; exec serve "$@" ;;
  train) shift; exec train "$@" ;;
  "") echo "rankops image: expected 'serve', 'train' or a command" >&2; exit 2 ;;
  *) exec "$@" ;;
esac
