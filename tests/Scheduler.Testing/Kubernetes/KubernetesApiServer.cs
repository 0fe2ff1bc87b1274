using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Web;
using k8s;

namespace Dtask.Testing.Kubernetes;

/// <summary>
/// A small Kubernetes API server on a free loopback port, for the one component that cannot run on a test machine.
/// It serves <see cref="KubernetesResourceType.ScheduledTasks"/> (list, watch, get, create, update, merge and JSON
/// patch, the <c>/status</c> subresource, delete with finalizers) and <see cref="KubernetesResourceType.Leases"/>
/// (for leader election) with the shapes, status codes and <c>Status</c> documents of the real API server, over
/// plain HTTP/1.1 without authentication. Watches stream one JSON event per flushed chunk.
/// <para>
/// Tests act on it as <c>kubectl</c> would (<see cref="Create"/>, <see cref="Update"/>, <see cref="Delete"/>),
/// force what is hard to provoke on a real cluster (<see cref="Compact"/>, <see cref="DropWatchConnections"/>,
/// <see cref="SendBookmark"/>), and read every request that reached it (<see cref="Requests"/>). A refused
/// <c>kubectl</c>-style action throws <see cref="InvalidOperationException"/> with the API server's message.
/// </para>
/// </summary>
public sealed class KubernetesApiServer : IAsyncDisposable
{
    private const string Json = "application/json";
    private readonly TcpListener listener;
    private readonly ObjectStore store;
    private readonly TimeProvider time;
    private readonly ConcurrentQueue<RecordedRequest> requests = new();
    private readonly ConcurrentDictionary<Task, bool> connections = new();
    private readonly CancellationTokenSource stopping = new();
    private readonly Task acceptLoop;

    private KubernetesApiServer(TcpListener listener, TimeProvider time)
    {
        this.listener = listener;
        this.time = time;
        store = new ObjectStore(time);
        var endpoint = (IPEndPoint)listener.LocalEndpoint;
        Url = new Uri($"http://127.0.0.1:{endpoint.Port}");
        acceptLoop = AcceptAsync();
    }

    /// <summary>The server's base address, such as <c>http://127.0.0.1:41234</c>.</summary>
    public Uri Url { get; }

    /// <summary>How a watch from a compacted resource version is answered; <see cref="ExpiredWatchAnswer.ErrorEvent"/> by default.</summary>
    public ExpiredWatchAnswer ExpiredWatchAnswer { get; set; } = ExpiredWatchAnswer.ErrorEvent;

    /// <summary>The resource version of the last write (one counter for every resource).</summary>
    public long ResourceVersion => store.ResourceVersion;

    /// <summary>How many watch connections are open.</summary>
    public int OpenWatches => store.OpenWatches;

    /// <summary>Every request that reached the server, in order of arrival.</summary>
    public IReadOnlyList<RecordedRequest> Requests => [.. requests];

    /// <summary>Starts a server on a free loopback port.</summary>
    /// <param name="time">The clock of <c>creationTimestamp</c> and <c>deletionTimestamp</c>; the system clock by default.</param>
    public static KubernetesApiServer Start(TimeProvider? time = null)
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return new KubernetesApiServer(listener, time ?? TimeProvider.System);
    }

    /// <summary>A client configuration for this server: its address, no TLS, no credentials.</summary>
    public KubernetesClientConfiguration ClientConfiguration() => new() { Host = Url.ToString() };

    /// <summary>A KubernetesClient client of this server; the caller disposes it.</summary>
    public k8s.Kubernetes CreateClient() => new(ClientConfiguration());

    /// <summary>Forgets the recorded requests, so a test can count what happens next.</summary>
    public void ClearRequests() => requests.Clear();

    /// <summary>
    /// Creates an object as <c>kubectl create</c> would, its resource found from <c>apiVersion</c> and <c>kind</c>;
    /// its namespace is <c>metadata.namespace</c> (<c>default</c> when absent). Returns the stored object.
    /// </summary>
    public JsonObject Create(JsonObject manifest)
    {
        var (type, ns, _) = Identify(manifest);
        return Kubectl(() => store.Create(type, ns, manifest));
    }

    /// <summary>
    /// Replaces an object as <c>kubectl replace</c> would: <c>status</c> is kept for resources with a status
    /// subresource, and <c>metadata.resourceVersion</c>, when present, must be the current one.
    /// </summary>
    public JsonObject Update(JsonObject manifest)
    {
        var (type, ns, name) = Identify(manifest);
        return Kubectl(() => store.Replace(type, ns, name, manifest, statusOnly: false));
    }

    /// <summary>Applies a JSON merge patch to an object, or to its status only, as <c>kubectl patch --type merge</c> would.</summary>
    public JsonObject MergePatch(KubernetesResourceType type, string @namespace, string name, JsonObject patch, bool status = false) =>
        Kubectl(() => store.Patch(type, @namespace, name, current => (JsonObject)JsonMergePatch.Apply(current, patch)!, status));

    /// <summary>The stored object, or null when there is none.</summary>
    public JsonObject? Get(KubernetesResourceType type, string @namespace, string name)
    {
        try
        {
            return store.Get(type, @namespace, name);
        }
        catch (ApiRejection rejection) when (rejection.Code == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>
    /// Deletes an object as <c>kubectl delete --wait=false</c> would: one with finalizers only gets a
    /// <c>deletionTimestamp</c> (a <c>MODIFIED</c> event) and goes when its last finalizer is removed. True when it is gone.
    /// </summary>
    public bool Delete(KubernetesResourceType type, string @namespace, string name) =>
        Kubectl(() => store.Delete(type, @namespace, name)).Deleted;

    /// <summary>
    /// Compacts the history: every open watch gets an <c>ERROR</c> event with a 410 <c>Expired</c> <c>Status</c>
    /// and ends, and a watch from any resource version before now is answered as <see cref="ExpiredWatchAnswer"/> says.
    /// </summary>
    public void Compact() => store.Compact();

    /// <summary>Cuts every open watch connection with a TCP reset, without ending the chunked response.</summary>
    public void DropWatchConnections() => store.DropWatches();

    /// <summary>Sends a <c>BOOKMARK</c> at the current resource version to every watch opened with <c>allowWatchBookmarks=true</c>.</summary>
    public void SendBookmark() => store.Bookmark();

    /// <summary>Completes when at least <paramref name="count"/> watches are open.</summary>
    public Task WaitForWatchesAsync(int count, CancellationToken cancellationToken = default) =>
        store.WaitForWatchesAsync(count, cancellationToken);

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await stopping.CancelAsync().ConfigureAwait(false);
        listener.Stop();
        store.DropWatches();
        await acceptLoop.ConfigureAwait(false);
        await Task.WhenAll(connections.Keys).ConfigureAwait(false);
        stopping.Dispose();
    }

    private static T Kubectl<T>(Func<T> action)
    {
        try
        {
            return action();
        }
        catch (ApiRejection rejection)
        {
            throw new InvalidOperationException(rejection.Message, rejection);
        }
    }

    private static (KubernetesResourceType Type, string Namespace, string Name) Identify(JsonObject manifest)
    {
        var apiVersion = manifest["apiVersion"]?.GetValue<string>();
        var kind = manifest["kind"]?.GetValue<string>();
        var type = KubernetesResourceType.Served.FirstOrDefault(t => t.ApiVersion == apiVersion && t.Kind == kind)
                   ?? throw new ArgumentException($"no served resource has apiVersion {apiVersion} and kind {kind}", nameof(manifest));
        var ns = manifest["metadata"]?["namespace"]?.GetValue<string>() is { Length: > 0 } given ? given : "default";
        var name = manifest["metadata"]?["name"]?.GetValue<string>() ?? throw new ArgumentException("the manifest has no metadata.name", nameof(manifest));
        return (type, ns, name);
    }

    private async Task AcceptAsync()
    {
        while (!stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptSocketAsync(stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            var connection = ServeAsync(socket);
            connections[connection] = true;
            _ = connection.ContinueWith(done => connections.TryRemove(done, out _), TaskScheduler.Default);
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        await Task.Yield();
        var connection = new HttpConnection(socket, time);
        await using (connection.ConfigureAwait(false))
        {
            try
            {
                while (await connection.ReadRequestAsync(stopping.Token).ConfigureAwait(false) is { } request)
                {
                    if (!await RespondAsync(connection, request).ConfigureAwait(false))
                    {
                        return;
                    }
                }
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
            {
                // The client went away, or the server is stopping.
            }
        }
    }

    /// <summary>Answers one request; false when the connection was cut and must not be used again.</summary>
    private async Task<bool> RespondAsync(HttpConnection connection, IncomingRequest request)
    {
        var body = Encoding.UTF8.GetString(request.Body);
        requests.Enqueue(new RecordedRequest(request.Method, request.Path, request.Query, request.ContentType, body));
        var query = HttpUtility.ParseQueryString(request.Query);
        try
        {
            var route = ApiRoute.Parse(request.Path);
            if (route.Name is null && request.Method == "GET" && query["watch"] is "true" or "1")
            {
                return await WatchAsync(connection, route, query).ConfigureAwait(false);
            }

            var (code, answer) = Answer(route, request, body);
            await WriteAsync(connection, code, answer).ConfigureAwait(false);
        }
        catch (ApiRejection rejection)
        {
            await WriteAsync(connection, rejection.Code, rejection.Status).ConfigureAwait(false);
        }
        catch (JsonException e)
        {
            await WriteAsync(connection, HttpStatusCode.BadRequest, ApiStatus.Failure(HttpStatusCode.BadRequest, "BadRequest", e.Message)).ConfigureAwait(false);
        }
        catch (JsonPatchException e)
        {
            await WriteAsync(connection, HttpStatusCode.UnprocessableEntity, ApiStatus.Failure(HttpStatusCode.UnprocessableEntity, "Invalid", e.Message)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or ArgumentException)
        {
            await WriteAsync(connection, HttpStatusCode.InternalServerError, ApiStatus.Failure(HttpStatusCode.InternalServerError, "InternalError", e.Message)).ConfigureAwait(false);
        }

        return true;
    }

    private (HttpStatusCode Code, JsonNode Body) Answer(ApiRoute route, IncomingRequest request, string body)
    {
        var type = route.Type;
        if (route.Name is null)
        {
            return request.Method switch
            {
                "GET" => (HttpStatusCode.OK, store.List(type, route.Namespace)),
                "POST" when route.Namespace is not null => (HttpStatusCode.Created, store.Create(type, route.Namespace, ParseObject(body))),
                _ => throw MethodNotAllowed(request.Method),
            };
        }

        var ns = route.Namespace!;
        var status = route.Subresource == "status";
        return request.Method switch
        {
            "GET" => (HttpStatusCode.OK, store.Get(type, ns, route.Name)),
            "PUT" => (HttpStatusCode.OK, store.Replace(type, ns, route.Name, ParseObject(body), status)),
            "PATCH" => (HttpStatusCode.OK, store.Patch(type, ns, route.Name, Patcher(request.ContentType, body), status)),
            "DELETE" when !status => Deleted(store.Delete(type, ns, route.Name)),
            _ => throw MethodNotAllowed(request.Method),
        };
    }

    /// <summary>200 with the last state of an object that is gone; 202 with one that waits for its finalizers.</summary>
    private static (HttpStatusCode Code, JsonNode Body) Deleted((JsonObject Object, bool Deleted) result) =>
        (result.Deleted ? HttpStatusCode.OK : HttpStatusCode.Accepted, result.Object);

    private static Func<JsonObject, JsonObject> Patcher(string? contentType, string body)
    {
        var mediaType = contentType?.Split(';')[0].Trim();
        var patch = JsonNode.Parse(body);
        return mediaType switch
        {
            "application/merge-patch+json" => current => JsonMergePatch.Apply(current, patch) as JsonObject
                                                         ?? throw ApiStatus.BadRequest("a merge patch must be a JSON object"),
            "application/json-patch+json" => current => JsonPatchDocument.Apply(current, patch),
            _ => throw new ApiRejection(ApiStatus.Failure(HttpStatusCode.UnsupportedMediaType, "UnsupportedMediaType",
                $"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json")),
        };
    }

    private async Task<bool> WatchAsync(HttpConnection connection, ApiRoute route, System.Collections.Specialized.NameValueCollection query)
    {
        long? from = long.TryParse(query["resourceVersion"], NumberStyles.None, CultureInfo.InvariantCulture, out var version) ? version : null;
        var bookmarks = query["allowWatchBookmarks"] is "true" or "1";
        var watch = store.Watch(route.Type, route.Namespace, from, bookmarks);
        if (watch is null)
        {
            var expired = ApiStatus.Expired(from!.Value);
            if (ExpiredWatchAnswer == ExpiredWatchAnswer.HttpGone)
            {
                await WriteAsync(connection, HttpStatusCode.Gone, expired).ConfigureAwait(false);
                return true;
            }

            await connection.StartChunkedAsync(HttpStatusCode.OK, Json, stopping.Token).ConfigureAwait(false);
            await connection.WriteChunkAsync(Line(new JsonObject { ["type"] = "ERROR", ["object"] = expired }.ToJsonString()), stopping.Token).ConfigureAwait(false);
            await connection.EndChunkedAsync(stopping.Token).ConfigureAwait(false);
            return true;
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping.Token);
        if (int.TryParse(query["timeoutSeconds"], NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) && seconds > 0)
        {
            timeout.CancelAfter(TimeSpan.FromSeconds(seconds));
        }

        try
        {
            await connection.StartChunkedAsync(HttpStatusCode.OK, Json, stopping.Token).ConfigureAwait(false);
            try
            {
                await foreach (var line in watch.Lines.ReadAllAsync(timeout.Token).ConfigureAwait(false))
                {
                    await connection.WriteChunkAsync(Line(line), stopping.Token).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
            {
                // timeoutSeconds elapsed: the watch ends cleanly, as on a real server.
            }

            if (watch.Aborted || stopping.IsCancellationRequested)
            {
                connection.Abort();
                return false;
            }

            await connection.EndChunkedAsync(stopping.Token).ConfigureAwait(false);
            return true;
        }
        finally
        {
            store.Unsubscribe(watch);
        }
    }

    private Task WriteAsync(HttpConnection connection, HttpStatusCode code, JsonNode body) =>
        connection.WriteResponseAsync(code, Json, Encoding.UTF8.GetBytes(body.ToJsonString()), stopping.Token);

    private static byte[] Line(string json) => Encoding.UTF8.GetBytes(json + "\n");

    private static JsonObject ParseObject(string body) =>
        JsonNode.Parse(body) as JsonObject ?? throw ApiStatus.BadRequest("the request body must be a JSON object");

    private static ApiRejection MethodNotAllowed(string method) => new(ApiStatus.Failure(HttpStatusCode.MethodNotAllowed,
        "MethodNotAllowed", $"the server does not allow this method on the requested resource ({method})"));
}
