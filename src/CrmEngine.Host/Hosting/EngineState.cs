using System.Diagnostics;

namespace CrmEngine.Host.Hosting;

/// <summary>What the running engine knows about itself (health, ready time).</summary>
internal sealed class EngineState
{
    private long _readyTicks;

    public EngineState(string contentRoot, string environmentName)
    {
        ContentRoot = contentRoot;
        EnvironmentName = environmentName;
        StartedAt = new DateTimeOffset(Process.GetCurrentProcess().StartTime.ToUniversalTime(), TimeSpan.Zero);
    }

    public string ContentRoot { get; }

    public string EnvironmentName { get; }

    /// <summary>When the process started (the start-up time to "ready" is measured from here).</summary>
    public DateTimeOffset StartedAt { get; }

    public DateTimeOffset? ReadyAt => Interlocked.Read(ref _readyTicks) is var t and > 0 ? new DateTimeOffset(t, TimeSpan.Zero) : null;

    public volatile string Status = "starting";

    public static string Version { get; } =
        typeof(EngineState).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            is [System.Reflection.AssemblyInformationalVersionAttribute a, ..] ? a.InformationalVersion.Split('+')[0] : "0.0.0";

    public void MarkReady(DateTimeOffset at)
    {
        Interlocked.Exchange(ref _readyTicks, at.UtcTicks);
        Status = "ready";
    }
}
