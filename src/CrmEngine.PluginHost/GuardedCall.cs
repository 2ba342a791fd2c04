using Microsoft.Extensions.Logging;

namespace CrmEngine.PluginHost;

internal enum CallOutcome { Succeeded, Failed, TimedOut, Cancelled }

/// <summary>How one guarded call into a plugin ended; <see cref="Description"/> is a one-line reason.</summary>
internal readonly record struct CallResult(CallOutcome Outcome, Exception? Error, string Description)
{
    public bool Succeeded => Outcome == CallOutcome.Succeeded;
}

/// <summary>
/// Runs host-to-plugin calls with exception capture, a time budget and cancellation. The call runs
/// on the thread pool so a plugin that blocks synchronously cannot hold up the caller; a call that
/// overruns is cancelled, abandoned and logged with the plugin id.
/// </summary>
internal static class GuardedCall
{
    public static Task<CallResult> RunAsync(string pluginId, string what, Action call, TimeSpan timeout, ILogger logger,
        CancellationToken cancellationToken) =>
        RunAsync(pluginId, what, _ =>
        {
            call();
            return Task.CompletedTask;
        }, timeout, logger, cancellationToken);

    public static async Task<CallResult> RunAsync(string pluginId, string what, Func<CancellationToken, Task> call,
        TimeSpan timeout, ILogger logger, CancellationToken cancellationToken)
    {
        // Not disposed when the call is abandoned: the plugin may still hold the token.
        var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var task = Task.Run(() => call(cts.Token), CancellationToken.None);
        try
        {
            await task.WaitAsync(timeout, cancellationToken);
            cts.Dispose();
            return new CallResult(CallOutcome.Succeeded, null, what + " succeeded");
        }
        catch (TimeoutException) when (!task.IsCompleted)
        {
            await cts.CancelAsync();
            Observe(task);
            var text = $"{what} did not finish within {Format(timeout)} and was abandoned";
            logger.LogError("Plugin {PluginId}: {Problem}", pluginId, text);
            return new CallResult(CallOutcome.TimedOut, new TimeoutException(text), text);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await cts.CancelAsync();
            Observe(task);
            var text = $"{what} was cancelled";
            logger.LogWarning("Plugin {PluginId}: {Problem}", pluginId, text);
            return new CallResult(CallOutcome.Cancelled, null, text);
        }
        catch (Exception ex)
        {
            cts.Dispose();
            var text = $"{what} threw {Describe(ex)}";
            logger.LogError(ex, "Plugin {PluginId}: {Problem}", pluginId, text);
            return new CallResult(CallOutcome.Failed, ex, text);
        }
    }

    /// <summary><c>InvalidOperationException: message</c>, on one line.</summary>
    public static string Describe(Exception ex)
    {
        if (ex is System.Reflection.TargetInvocationException { InnerException: { } inner })
        {
            ex = inner;
        }

        var message = ex.Message.ReplaceLineEndings(" ").Trim();
        return $"{ex.GetType().Name}: {message}";
    }

    public static string Format(TimeSpan span) =>
        span.TotalSeconds >= 1 && span.Milliseconds == 0 ? $"{span.TotalSeconds:0} s" : $"{span.TotalMilliseconds:0} ms";

    private static void Observe(Task task) =>
        _ = task.ContinueWith(t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted,
            TaskScheduler.Default);
}
