# dtask: one image for the operator and the executor (`dtask operator ...`, `dtask executor ...`).
#   docker build -t dtask:0.1.0 .
# TARGETARCH (amd64 or arm64) is set by BuildKit; the binary is a self-contained single file.

FROM --platform=$BUILDPLATFORM mcr.microsoft.com/dotnet/sdk:10.0 AS build
ARG TARGETARCH=amd64
WORKDIR /src
COPY Directory.Build.props Directory.Packages.props ./
COPY operator/ operator/
RUN rid="linux-$([ "$TARGETARCH" = "arm64" ] && echo arm64 || echo x64)" \
 && dotnet publish operator/Scheduler.Cli -c Release -r "$rid" --self-contained \
      -p:PublishSingleFile=true -p:DebugType=none -o /out

# runtime-deps, not chiseled: the executor runs tasks' commands, and a `shell:` task needs /bin/sh.
FROM mcr.microsoft.com/dotnet/runtime-deps:10.0 AS runtime
RUN groupadd --system --gid 10001 dtask \
 && useradd --system --uid 10001 --gid dtask --home-dir /var/lib/dtask --shell /usr/sbin/nologin dtask \
 && install -d -o dtask -g dtask -m 0750 /var/lib/dtask
COPY --from=build /out/dtask /usr/local/bin/dtask
ENV DTASK_LOG_FORMAT=json
WORKDIR /var/lib/dtask
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/dtask"]
CMD ["--help"]
