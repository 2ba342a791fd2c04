using System.Threading.Channels;
using CrmEngine.Abstractions.Mail;
using CrmEngine.Mail.Outbox;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace CrmEngine.Mail.Sending;

/// <summary>
/// Drains the outbox. One dispatcher claims due messages (state Sending, attempt counted, in one store transaction) and
/// hands them to <see cref="MailOptions.Workers"/> workers; each worker owns one transport (one MailKit SmtpClient kept
/// connected, never shared between threads) and paces itself by the shared messages-per-minute limit. Outcomes are
/// written in batches by one writer. At start, messages left in Sending by a crash are sent again (the documented
/// duplicate window: a kill after the server accepted a message and before its outcome was stored).
/// </summary>
internal sealed class OutboxSender : BackgroundService
{
    private readonly OutboxStore _store;
    private readonly MessageComposer _composer;
    private readonly MailOptions _options;
    private readonly MailSignal _signal;
    private readonly Func<IMailTransport> _transportFactory;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Pacer _pacer;
    private readonly Channel<MailDocument> _work;
    private readonly Channel<AttemptOutcome> _outcomes = Channel.CreateUnbounded<AttemptOutcome>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _abort = new();
    private int _inFlight;
    private TaskCompletionSource _slotFreed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _sent;

    private readonly Func<string, CancellationToken, Task<bool>> _isErased;

    public OutboxSender(OutboxStore store, MessageComposer composer, MailOptions options, MailSignal signal, Func<IMailTransport> transportFactory,
        TimeProvider? time = null, ILogger<OutboxSender>? logger = null, Func<string, CancellationToken, Task<bool>>? isErased = null)
    {
        _isErased = isErased ?? ((_, _) => Task.FromResult(false));
        _store = store;
        _composer = composer;
        _options = options;
        _signal = signal;
        _transportFactory = transportFactory;
        _time = time ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _pacer = new Pacer(options.MessagesPerMinute, _time);
        _capacity = CapacityFor(options);
        _work = Channel.CreateBounded<MailDocument>(new BoundedChannelOptions(Capacity) { SingleWriter = true });
    }

    /// <summary>
    /// Messages claimed but not finished at most. Claims are batches (one store transaction and disk sync for many
    /// messages), so this is large enough for the dispatcher to claim again while the workers still have work: about
    /// 64 per worker, and with a rate limit no more than about ten seconds of sending (a claimed message is in Sending
    /// until it is tried; a crash meanwhile counts it as interrupted).
    /// </summary>
    private readonly int _capacity;

    internal static int CapacityFor(MailOptions options)
    {
        var capacity = Math.Clamp(options.Workers * 64, 64, 512);
        if (options.MessagesPerMinute > 0)
        {
            capacity = Math.Min(capacity, Math.Max(options.Workers * 2, options.MessagesPerMinute / 6));
        }

        return capacity;
    }

    private int Capacity => _capacity;

    /// <summary>Messages this process delivered (for logs and tests).</summary>
    public long SentCount => Interlocked.Read(ref _sent);

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        var recovered = await _store.RecoverInterruptedAsync().ConfigureAwait(false);
        if (recovered > 0)
        {
            _logger.LogWarning("{Count} message(s) were being sent when the engine last stopped; sending them again (they may arrive twice)", recovered);
        }

        _logger.LogInformation("Mail sender started: {Options}", _options.ToString());
        await base.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        // Host shutdown timeout reached: cut sends in progress (they stay in Sending and are retried at the next start).
        await using var abort = cancellationToken.Register(() => _abort.Cancel());
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_options.Enabled)
        {
            _logger.LogWarning("Mail sender disabled (Mail:Enabled=false): messages are enqueued and wait");
            return;
        }

        var writer = Task.Run(() => WriteOutcomesAsync(), CancellationToken.None);
        var workers = Enumerable.Range(1, _options.Workers).Select(n => Task.Run(() => WorkAsync(n, stoppingToken), CancellationToken.None)).ToList();
        try
        {
            await DispatchAsync(stoppingToken).ConfigureAwait(false);
        }
        finally
        {
            _work.Writer.TryComplete();
            await Task.WhenAll(workers).ConfigureAwait(false);
            _outcomes.Writer.TryComplete();
            await writer.ConfigureAwait(false);
        }
    }

    private async Task DispatchAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            var wake = _signal.Current;
            var freed = Volatile.Read(ref _slotFreed).Task;
            try
            {
                // Claim in batches: only when half the room is free (or nothing is in flight), never one slot at a time.
                var inFlight = Volatile.Read(ref _inFlight);
                var room = Capacity - inFlight;
                if (inFlight > 0 && room < Capacity / 2)
                {
                    await freed.WaitAsync(stoppingToken).ConfigureAwait(false);
                    continue;
                }

                var claimed = room > 0 ? await _store.ClaimDueAsync(room).ConfigureAwait(false) : [];
                foreach (var doc in claimed)
                {
                    Interlocked.Increment(ref _inFlight);
                    await _work.Writer.WriteAsync(doc, CancellationToken.None).ConfigureAwait(false);
                }

                if (claimed.Count > 0 && claimed.Count == room)
                {
                    await freed.WaitAsync(stoppingToken).ConfigureAwait(false);
                    continue;
                }

                if (claimed.Count > 0)
                {
                    continue;
                }

                var delay = _options.PollInterval;
                if (_store.EarliestDue() is { } due)
                {
                    var until = TimeSpan.FromMilliseconds(Math.Max(0, due - _store.NowMs));
                    delay = until < delay ? until : delay;
                }

                if (room <= 0)
                {
                    await freed.WaitAsync(stoppingToken).ConfigureAwait(false);
                }
                else if (delay > TimeSpan.Zero)
                {
                    await Task.WhenAny(wake, Task.Delay(delay, _time, stoppingToken)).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                _logger.LogError(ex, "Mail dispatcher failed; trying again in one second");
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(1), _time, stoppingToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private async Task WorkAsync(int worker, CancellationToken stoppingToken)
    {
        await using var transport = _transportFactory();
        await foreach (var doc in _work.Reader.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
        {
            try
            {
                if (stoppingToken.IsCancellationRequested)
                {
                    // Claimed but not started: back to Pending, the attempt not counted.
                    Report(new AttemptOutcome(doc.Id, doc.Attempts, MailState.Pending, null, null, _store.NowMs));
                    continue;
                }

                try
                {
                    await _pacer.WaitAsync(stoppingToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    Report(new AttemptOutcome(doc.Id, doc.Attempts, MailState.Pending, null, null, _store.NowMs));
                    continue;
                }

                Report(await AttemptAsync(worker, transport, doc).ConfigureAwait(false));
            }
            finally
            {
                Interlocked.Decrement(ref _inFlight);
                Interlocked.Exchange(ref _slotFreed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
            }
        }
    }

    private async Task<AttemptOutcome> AttemptAsync(int worker, IMailTransport transport, MailDocument doc)
    {
        try
        {
            // Erased after it was enqueued: the snapshot still holds the person's data; it is dropped, not sent.
            if (doc.CustomerId is { } customerId && await _isErased(customerId, _abort.Token).ConfigureAwait(false))
            {
                _logger.LogInformation("Mail {Id} suppressed: {Reason}", doc.Id, MailOutbox.ErasedReason);
                return new AttemptOutcome(doc.Id, doc.Attempts, MailState.Suppressed, MailOutbox.ErasedReason, null, null, Scrub: true);
            }

            var message = await _composer.ComposeAsync(doc, _abort.Token).ConfigureAwait(false);
            var reply = await transport.SendAsync(message, doc.Id, _abort.Token).ConfigureAwait(false);
            Interlocked.Increment(ref _sent);
            _logger.LogDebug("Mail {Id} sent by worker {Worker}: {Reply}", doc.Id, worker, reply);
            return new AttemptOutcome(doc.Id, doc.Attempts, MailState.Sent, null, Clip(reply), null);
        }
        catch (MailTransportException ex) when (ex.Permanent)
        {
            _logger.LogWarning("Mail {Id} to template {Template} failed for good: {Error}", doc.Id, doc.Template, ex.Message);
            return new AttemptOutcome(doc.Id, doc.Attempts, MailState.Failed, Clip(ex.Message), null, null);
        }
        catch (MailTransportException ex)
        {
            if (doc.Attempts >= _options.MaxAttempts)
            {
                _logger.LogWarning("Mail {Id} failed after {Attempts} attempts: {Error}", doc.Id, doc.Attempts, ex.Message);
                return new AttemptOutcome(doc.Id, doc.Attempts, MailState.Failed, Clip($"gave up after {doc.Attempts} attempts: {ex.Message}"), null, null);
            }

            var wait = Backoff(doc.Attempts);
            _logger.LogInformation("Mail {Id} attempt {Attempt} failed ({Error}); next attempt in {Wait}", doc.Id, doc.Attempts, ex.Message, wait);
            return new AttemptOutcome(doc.Id, doc.Attempts, MailState.Retrying, Clip(ex.Message), null, _store.NowMs + (long)wait.TotalMilliseconds);
        }
        catch (OperationCanceledException) when (_abort.IsCancellationRequested)
        {
            // Cut by the shutdown timeout: it stays in Sending; the next start sends it again.
            return new AttemptOutcome(doc.Id, -1, MailState.Sending, null, null, null);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            _logger.LogError(ex, "Mail {Id}: unexpected error; it will be tried again", doc.Id);
            return new AttemptOutcome(doc.Id, doc.Attempts, MailState.Retrying, Clip($"{ex.GetType().Name}: {ex.Message}"), null,
                _store.NowMs + (long)Backoff(doc.Attempts).TotalMilliseconds);
        }
    }

    private TimeSpan Backoff(int attempt) => Backoff(_options, attempt);

    /// <summary>RetryBaseDelay × 2^(attempt-1), at most RetryMaxDelay.</summary>
    internal static TimeSpan Backoff(MailOptions options, int attempt)
    {
        var factor = Math.Pow(2, Math.Min(Math.Max(attempt - 1, 0), 30));
        var ms = Math.Min(options.RetryBaseDelay.TotalMilliseconds * factor, options.RetryMaxDelay.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(ms);
    }

    private static string? Clip(string? text) => text is { Length: > 2000 } ? text[..2000] + "…" : text;

    private void Report(AttemptOutcome outcome)
    {
        if (outcome.Attempt >= 0)
        {
            _outcomes.Writer.TryWrite(outcome);
        }
    }

    /// <summary>
    /// How long the first outcome of a batch waits for more before they are stored together. Each store transaction
    /// costs disk syncs, so a steady stream of sends is recorded in a few large transactions, not one per message.
    /// This lengthens the duplicate window (accepted by the server, outcome not yet stored) by at most this much.
    /// </summary>
    internal static readonly TimeSpan OutcomeGather = TimeSpan.FromMilliseconds(100);

    /// <summary>Writes outcomes as they come, what queued up within <see cref="OutcomeGather"/> in one transaction; retries a failed write.</summary>
    private async Task WriteOutcomesAsync()
    {
        var batch = new List<AttemptOutcome>();
        while (await _outcomes.Reader.WaitToReadAsync(CancellationToken.None).ConfigureAwait(false))
        {
            var gatherUntil = Environment.TickCount64 + (long)OutcomeGather.TotalMilliseconds;
            while (batch.Count < 512)
            {
                if (_outcomes.Reader.TryRead(out var outcome))
                {
                    batch.Add(outcome);
                    continue;
                }

                // Workers still running and the batch not big: give the next outcomes a moment to arrive.
                var left = gatherUntil - Environment.TickCount64;
                if (left <= 0 || _outcomes.Reader.Completion.IsCompleted || Volatile.Read(ref _inFlight) == 0)
                {
                    break;
                }

                using var wait = new CancellationTokenSource(TimeSpan.FromMilliseconds(left));
                try
                {
                    await _outcomes.Reader.WaitToReadAsync(wait.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }

            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    await _store.CompleteAsync(batch).ConfigureAwait(false);
                    break;
                }
                catch (Exception ex) when (ex is not OutOfMemoryException && attempt < 5 && ex is not ObjectDisposedException)
                {
                    _logger.LogError(ex, "Storing {Count} mail outcome(s) failed; trying again", batch.Count);
                    await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt), _time).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    // Left in Sending: sent again at the next start (the documented duplicate window).
                    _logger.LogError(ex, "Storing {Count} mail outcome(s) failed for good; they are sent again at the next start", batch.Count);
                    break;
                }
            }

            if (batch.Any(o => o.State is MailState.Retrying or MailState.Pending))
            {
                _signal.Wake();
            }

            batch.Clear();
        }
    }

    public override void Dispose()
    {
        _abort.Dispose();
        base.Dispose();
    }
}

/// <summary>Spaces sends evenly so that all workers together stay within the messages-per-minute limit.</summary>
internal sealed class Pacer(int perMinute, TimeProvider time)
{
    private readonly Lock _gate = new();
    private readonly long _intervalTicks = perMinute > 0 ? TimeSpan.FromMinutes(1).Ticks / perMinute : 0;
    private long _next;

    public Task WaitAsync(CancellationToken cancellationToken)
    {
        if (_intervalTicks == 0)
        {
            return Task.CompletedTask;
        }

        long slot;
        var now = time.GetUtcNow().UtcTicks;
        lock (_gate)
        {
            slot = Math.Max(now, _next);
            _next = slot + _intervalTicks;
        }

        var wait = TimeSpan.FromTicks(slot - now);
        return wait <= TimeSpan.Zero ? Task.CompletedTask : Task.Delay(wait, time, cancellationToken);
    }
}
