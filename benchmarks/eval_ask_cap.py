"""hashmem eval-ask with another prompt cap and shortlist (issue 19: choosing ``focus.PROMPT_TOKENS``).

Sets ``LlamaDecoder``'s ``prompt_tokens`` default and ``decoders.llama.SHORTLIST``, then runs the
``hashmem`` command line with the remaining arguments. Used for docs/ask.md's cap table (quiet machine,
2026-12-07; results in benchmarks/results/eval_ask_cap_<set>_<cap>_<shortlist>.json):

    for v in "384 8" "256 16" "256 8" "192 16"; do set -- $v
      .venv/bin/python benchmarks/eval_ask_cap.py $1 $2 eval-ask ../shared/data/locomo --fidelity text \\
        --ask-style extract --limit 60 -k 5 --threads 2 --json > benchmarks/results/eval_ask_cap_locomo_$1_$2.json
    done
    # and the same with benchmarks/data/book_ask (no --limit) for "384 16" "256 16" "192 16"
"""

import sys


def main() -> None:
    cap, shortlist = int(sys.argv[1]), int(sys.argv[2])
    from hashmem.decoders import llama

    llama.SHORTLIST = shortlist
    llama.LlamaDecoder.__init__.__kwdefaults__["prompt_tokens"] = cap
    sys.argv = ["hashmem", *sys.argv[3:]]
    from hashmem.cli.main import main as cli

    cli()


if __name__ == "__main__":
    main()
