# The e2e model server as an image, for the kind provider (the local world runs it as a process).
FROM python:3.11-slim
RUN pip install --no-cache-dir aiohttp numpy prometheus-client scikit-learn kubernetes pyyaml
WORKDIR /app
COPY e2e /app/e2e
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["python", "-m", "e2e.modelserver", "--port", "8080", "--host", "0.0.0.0", "--in-container"]
