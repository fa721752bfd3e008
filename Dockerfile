# voicebot-gateway: build on Debian 12, run on Debian 12 slim.
# whisper.cpp is built without -march=native so the image runs on any x86-64.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      cmake clang libclang-dev espeak-ng libespeak-ng-dev libopus-dev protobuf-compiler python3 python3-pip \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
ENV GGML_NATIVE=OFF
RUN cargo build --release --locked --bin voicebot
RUN VOICEBOT_MODEL_DIR=/models bash models/fetch.sh base vad && rm -rf /models/downloads

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends espeak-ng libespeak-ng1 libopus0 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/voicebot /usr/local/bin/voicebot
COPY --from=build /models /models
ENV VOICEBOT_MODEL_DIR=/models
EXPOSE 5060/udp 5060/tcp 8080/tcp
ENTRYPOINT ["voicebot"]
CMD ["serve"]
