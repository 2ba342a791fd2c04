using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Plugins;
using CrmEngine.Abstractions.Store;
using Microsoft.Extensions.Options;

namespace Fixture.StreamWriter;

/// <summary>Bound from <c>Plugins:fixture.stream</c>.</summary>
public sealed class StreamOptions
{
    /// <summary>Every id whose create returned (was committed) is appended here, one per line, flushed to disk.</summary>
    public string? AckFile { get; set; }

    /// <summary>Pause between writes; 0 writes as fast as the store takes them.</summary>
    public int DelayMilliseconds { get; set; }

    /// <summary>
    /// Writers running at once, each awaiting its own creates: with several, writes are in flight together and the
    /// store commits them in groups (one transaction, split and replayed on a failure), so a kill lands mid-group.
    /// </summary>
    public int Writers { get; set; } = 8;

    /// <summary>When set, StartAsync throws an InvalidOperationException with this message (log line tests).</summary>
    public string? ThrowOnStart { get; set; }

    /// <summary>Name prefix of the customers written.</summary>
    public string Prefix { get; set; } = "stream";
}

public sealed class StreamWriterPlugin : CrmPlugin
{
    public override void ConfigureServices(IPluginBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.BindOptions<StreamOptions>();
        builder.AddWorker<StreamWorker>();
    }

    public override Task StartAsync(IPluginContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Configuration[nameof(StreamOptions.ThrowOnStart)] is { Length: > 0 } message
            ? throw new InvalidOperationException(message)
            : Task.CompletedTask;
    }
}

/// <summary>Writes customers with <see cref="StreamOptions.Writers"/> concurrent writers until stopped (or killed).</summary>
public sealed class StreamWorker(ICrmStore store, IOptions<StreamOptions> options) : IPluginWorker
{
    private readonly Lock _ackGate = new();
    private int _next;

    public async Task RunAsync(CancellationToken stoppingToken)
    {
        var o = options.Value;
        if (string.IsNullOrEmpty(o.AckFile))
        {
            return;
        }

        using var ack = new FileStream(o.AckFile, FileMode.Append, FileAccess.Write, FileShare.ReadWrite, 1, FileOptions.WriteThrough);
        var writers = Enumerable.Range(0, Math.Max(1, o.Writers))
            .Select(_ => Task.Run(() => WriteAsync(o, ack, stoppingToken), CancellationToken.None))
            .ToArray();
        await Task.WhenAll(writers);
    }

    private async Task WriteAsync(StreamOptions o, FileStream ack, CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            var n = Interlocked.Increment(ref _next);
            Customer created;
            try
            {
                created = await store.Customers.CreateAsync(new Customer
                {
                    Name = $"{o.Prefix}-{Environment.ProcessId}-{n}",
                    Emails = [$"c{n}.{Environment.ProcessId}@example.com"],
                    Tags = ["stream"],
                }, CancellationToken.None);
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (StoreException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }

            // Acknowledged: the create returned, so the write is committed. Record it durably, one whole line at a time.
            var line = System.Text.Encoding.ASCII.GetBytes(created.Id + "\n");
            lock (_ackGate)
            {
                ack.Write(line);
                ack.Flush(flushToDisk: true);
            }

            if (o.DelayMilliseconds > 0)
            {
                try
                {
                    await Task.Delay(o.DelayMilliseconds, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }
}
