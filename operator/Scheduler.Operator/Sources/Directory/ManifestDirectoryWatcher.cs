using System.Threading.Channels;

namespace Dtask.Operator.Sources.Directory;

/// <summary>
/// Watches a manifest directory with a <see cref="FileSystemWatcher"/> (recursively: files and folders created,
/// changed, deleted or renamed — editors that save by writing a new file and renaming it over the old one show as
/// a rename) and coalesces what it sees into "something changed" signals. It only signals: the reconcile reads the
/// whole directory again. When the watcher fails (its buffer overflowed, the folder vanished) it signals too and
/// starts watching again.
/// </summary>
public sealed class ManifestDirectoryWatcher : IDisposable
{
    private readonly string path;
    private readonly Channel<string> signals = Channel.CreateBounded<string>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropOldest });
    private readonly Lock gate = new();
    private FileSystemWatcher? watcher;
    private bool disposed;

    /// <summary>Starts watching <paramref name="path"/> (when it exists; otherwise <see cref="Restart"/> later).</summary>
    public ManifestDirectoryWatcher(string path)
    {
        this.path = path ?? throw new ArgumentNullException(nameof(path));
        Restart();
    }

    /// <summary>The change signals; each carries a short reason (<c>changed backup.yaml</c>).</summary>
    public ChannelReader<string> Signals => signals.Reader;

    /// <summary>True while a watcher is attached to the directory.</summary>
    public bool IsWatching
    {
        get
        {
            lock (gate)
            {
                return watcher is not null;
            }
        }
    }

    /// <summary>(Re)attaches the watcher; a missing directory leaves it detached (the periodic resync still runs).</summary>
    public void Restart()
    {
        lock (gate)
        {
            if (disposed)
            {
                return;
            }

            watcher?.Dispose();
            watcher = null;
            if (!System.IO.Directory.Exists(path))
            {
                return;
            }

            var fresh = new FileSystemWatcher(path)
            {
                IncludeSubdirectories = true,
                NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.CreationTime,
                InternalBufferSize = 64 * 1024,
            };
            fresh.Created += (_, e) => Signal($"created {e.Name}");
            fresh.Changed += (_, e) => Signal($"changed {e.Name}");
            fresh.Deleted += (_, e) => Signal($"deleted {e.Name}");
            fresh.Renamed += (_, e) => Signal($"renamed {e.OldName} to {e.Name}");
            fresh.Error += (_, e) => Failed(e.GetException().Message);
            fresh.EnableRaisingEvents = true;
            watcher = fresh;
        }
    }

    /// <summary>Raised (on a thread-pool thread) when the watcher failed; it has already signalled.</summary>
    public event EventHandler<string>? WatchFailed;

    private void Signal(string reason) => signals.Writer.TryWrite(reason);

    private void Failed(string reason)
    {
        Signal("the file watcher failed: " + reason);
        WatchFailed?.Invoke(this, reason);
        Restart();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        lock (gate)
        {
            disposed = true;
            watcher?.Dispose();
            watcher = null;
        }

        signals.Writer.TryComplete();
    }
}
