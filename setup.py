"""Packaging for rankops.

Dependencies are grouped by the part of the platform that needs them so a
SageMaker serving image does not carry Spark and a Spark job does not carry CDK.
Exact, reproducible versions live in ``constraints.txt`` (used by the Makefile);
the ranges here say what the code is written against.
"""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

CORE = [
    "boto3>=1.40,<2",
    "numpy>=2.0,<3",
    "pandas>=2.2,<3",
    "pyarrow>=18,<27",
    "pydantic>=2.8,<3",
    "pyyaml>=6,<7",
    "orjson>=3.10,<4",
    "prometheus-client>=0.20,<1",
]
SPARK = ["pyspark>=4.0,<5"]
# Compiled trees (docs/scoring.md): the training job compiles, the server loads. lleaves 1.3
# is written against llvmlite < 0.44 (its LLVM binding API).
COMPILED = ["lleaves>=1.3,<1.4", "llvmlite>=0.43,<0.44"]
TRAIN = [
    "lightgbm>=4.5,<5",
    *COMPILED,
    "mlflow>=3.1,<4",
    "scikit-learn>=1.5,<2",
    "matplotlib>=3.8,<4",
]
SERVE = [
    "lightgbm>=4.5,<5",
    *COMPILED,
    "mlflow>=3.1,<4",
    "starlette>=0.40",
    "uvicorn[standard]>=0.30,<1",
    "redis[hiredis]>=5,<9",
]
INFRA = [
    "aws-cdk-lib>=2.200,<3",
    "constructs>=10.3,<11",
    "cdk-nag>=2.30,<4",
    "sagemaker>=3.0,<4",
]
# moto is pinned exactly: the local Step Functions runner adapts its internals.
DEV = [
    "moto[server,stepfunctions,dynamodb,s3,sns,events,sagemaker]==5.2.5",
    "pytest>=8,<10",
    "pytest-timeout>=2.3,<3",
    "pytest-xdist>=3.5,<4",
    "hypothesis>=6.100,<7",
    "networkx>=3,<4",
    "httpx>=0.27,<1",
    "ruff>=0.6,<1",
    "mypy>=1.11,<3",
    "types-PyYAML",
    "cfn-lint>=1.10,<2",
    "statelint>=3.0,<4",
    # rankops.monitoring.dashboards renders the checked-in Grafana JSON with it (not at run time). Its
    # versions are "<build epoch>!<Grafana version>"; constraints.txt pins the Grafana 11.6 build.
    "grafana-foundation-sdk",
]

setup(
    name="rankops",
    version=(HERE / "rankops" / "VERSION").read_text().strip(),
    description="MLOps platform for learning-to-rank: from click logs to a safely released SageMaker endpoint",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=find_packages(
        include=["rankops*", "infra*", "stepfunctions*", "sagemaker_jobs*", "emr_jobs*", "lambdas*"]
    ),
    include_package_data=True,
    package_data={"rankops": ["VERSION", "py.typed"], "rankops.monitoring.assets": ["*.json", "*.yml"]},
    install_requires=CORE,
    extras_require={
        "spark": SPARK,
        "train": TRAIN,
        "serve": SERVE,
        "infra": INFRA,
        "all": sorted(set(SPARK + TRAIN + SERVE + INFRA)),
        "dev": sorted(set(SPARK + TRAIN + SERVE + INFRA + DEV)),
    },
    entry_points={
        "console_scripts": [
            "rankops=rankops.cli:main",
            # The SageMaker container contract: endpoints run `serve`, training jobs run `train`.
            "serve=sagemaker_jobs.serve.entry:main",
            "train=sagemaker_jobs.training.entry:main",
        ]
    },
    classifiers=[
        "Programming Language :: Python :: 3.11",
    ],
)
