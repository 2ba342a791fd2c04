using CrmEngine.Abstractions;
using CrmEngine.Abstractions.Plugins;
using CrmEngine.Abstractions.Scheduling;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Pipeline;
using CrmEngine.Core.Storage;
using CrmEngine.Scheduling.Jobs;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrmEngine.PluginHost;

/// <summary>
/// Finds, checks, loads, starts and stops plugins, and keeps one state per plugin folder.
/// Every call into a plugin is guarded; a plugin that fails is marked and the others go on.
/// </summary>
public sealed class PluginManager : IAsyncDisposable, CrmEngine.Security.IEntityDeclarationSource
{
    private readonly PluginHostOptions _options;
    private readonly IConfiguration _configuration;
    private readonly IStoreProvider _stores;
    private readonly IInstalledPlugins _installed;
    private readonly IWriteHandlerRegistry _registry;
    private readonly PluginFaultBreaker _breaker;
    private readonly ILoggerFactory _loggerFactory;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly JobScheduler? _scheduler;
    private readonly IBusinessCalendars? _calendars;
    private readonly IReadOnlyList<IPluginServiceContributor> _contributors;
    private readonly SemaphoreSlim _lifecycle = new(1, 1);
    private readonly List<Task> _breakerStops = [];
    private volatile IReadOnlyList<PluginRuntime> _runtimes = [];
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, EntityDeclaration> _declared = new(StringComparer.Ordinal);
    private volatile IReadOnlyCollection<EntityDeclaration> _declaredList = [];
    private bool _started;
    private int _disposed;

    public PluginManager(IOptions<PluginHostOptions> options, IConfiguration configuration, IStoreProvider stores,
        IInstalledPlugins installed, IWriteHandlerRegistry registry, PluginFaultBreaker breaker,
        ILoggerFactory loggerFactory, TimeProvider time, JobScheduler? scheduler = null, IBusinessCalendars? calendars = null,
        IEnumerable<IPluginServiceContributor>? contributors = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(breaker);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        _options = options.Value;
        _configuration = configuration;
        _stores = stores;
        _installed = installed;
        _registry = registry;
        _breaker = breaker;
        _loggerFactory = loggerFactory;
        _time = time;
        _scheduler = scheduler;
        _calendars = calendars;
        _contributors = contributors?.ToList() ?? [];
        _logger = loggerFactory.CreateLogger<PluginManager>();
        _breaker.Tripped += OnBreakerTripped;
    }

    /// <summary>Base for relative <see cref="PluginHostOptions.Directories"/>; the application's base directory by default.</summary>
    public string BaseDirectory { get; init; } = AppContext.BaseDirectory;

    /// <summary>The folders searched for plugins, as absolute paths.</summary>
    public IReadOnlyList<string> Directories => _options.ResolveDirectories(BaseDirectory);

    /// <summary>Every plugin folder found, runnable ones in load order first. Empty before start.</summary>
    public IReadOnlyList<PluginInfo> Plugins => _runtimes.Select(r => r.ToInfo()).ToList();

    /// <summary>
    /// Entities the plugins declared to the access model. Kept once made, even after the plugin stops or fails, so the
    /// protected fields of its stored records stay hidden.
    /// </summary>
    public IReadOnlyCollection<EntityDeclaration> EntityDeclarations => _declaredList;

    public PluginInfo? Find(string id) =>
        _runtimes.FirstOrDefault(r => string.Equals(r.Id, id, StringComparison.OrdinalIgnoreCase))?.ToInfo();

    /// <summary>Discovers, resolves and starts every plugin (in dependency order); logs one line per plugin.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await _lifecycle.WaitAsync(cancellationToken);
        try
        {
            if (_started)
            {
                throw new InvalidOperationException("The plugin manager has already been started.");
            }

            _started = true;
            foreach (var dir in Directories.Where(d => !System.IO.Directory.Exists(d)))
            {
                _logger.LogWarning("Plugin folder {PluginDirectory} does not exist; no plugins are loaded from it", dir);
            }

            var candidates = PluginResolver.Resolve(PluginResolver.Discover(Directories), _configuration,
                SemVersion.Parse(CrmSdk.Version));
            var runtimes = candidates.Select(c => new PluginRuntime(c)).ToList();
            foreach (var r in runtimes.Where(r => r.Candidate.IsRefused))
            {
                r.Set(r.Candidate.State!.Value, r.Candidate.Reason);
            }

            _runtimes = runtimes;
            var byId = runtimes.Where(r => !r.Candidate.IsRefused).ToDictionary(r => r.Id, StringComparer.OrdinalIgnoreCase);
            foreach (var runtime in runtimes.Where(r => !r.Candidate.IsRefused))
            {
                cancellationToken.ThrowIfCancellationRequested();
                var inactive = runtime.Manifest!.Dependencies
                    .Select(d => byId[d.Id])
                    .FirstOrDefault(d => d.State != PluginState.Active);
                if (inactive is not null)
                {
                    runtime.Set(PluginState.Disabled, $"dependency {inactive.Id} is not active ({inactive.State})");
                    continue;
                }

                await StartOneAsync(runtime, cancellationToken);
            }

            // Workers start only once every plugin has registered its handlers: a worker that writes at once must not
            // get ahead of a later plugin's handlers (an Async handler registered after a write gets no delivery for it).
            foreach (var runtime in runtimes.Where(r => !r.Candidate.IsRefused))
            {
                StartWorkers(runtime);
            }

            foreach (var info in Plugins)
            {
                if (info.State == PluginState.Active)
                {
                    _logger.LogInformation("Plugin {PluginId} {PluginVersion} {PluginState}", info.Id, info.Version, info.State);
                }
                else
                {
                    _logger.LogWarning("Plugin {PluginId} {PluginVersion} {PluginState}: {PluginReason}",
                        info.Id, info.Version ?? "?", info.State, info.Reason);
                }
            }
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>Stops active plugins in reverse dependency order, each under <see cref="PluginHostOptions.StopTimeout"/>.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _lifecycle.WaitAsync(CancellationToken.None);
        try
        {
            // Every plugin's workers stop before any plugin's handlers are unregistered: a worker still writing must not
            // outlive another plugin's handlers (its writes would get no async delivery for them).
            var workers = new List<Task>();
            foreach (var runtime in _runtimes.Reverse())
            {
                if (runtime.AcceptsCalls && runtime.WorkerCancellation is { } cancellation)
                {
                    await cancellation.CancelAsync();
                    workers.AddRange(runtime.WorkerTasks);
                }
            }

            try
            {
                await Task.WhenAll(workers).WaitAsync(_options.StopTimeout, CancellationToken.None);
            }
            catch (TimeoutException)
            {
                _logger.LogError("Plugin workers did not stop within {Timeout}; the plugins are stopped anyway", _options.StopTimeout);
            }

            foreach (var runtime in _runtimes.Reverse())
            {
                if (runtime.TryBeginStop(null, null))
                {
                    await ShutDownAsync(runtime, cancellationToken);
                }
            }

            Task[] pending;
            lock (_breakerStops)
            {
                pending = [.. _breakerStops];
            }

            await Task.WhenAll(pending).WaitAsync(_options.StopTimeout, CancellationToken.None)
                .ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        _breaker.Tripped -= OnBreakerTripped;
        await StopAsync(CancellationToken.None);
        _lifecycle.Dispose();
    }

    private async Task StartOneAsync(PluginRuntime runtime, CancellationToken cancellationToken)
    {
        var id = runtime.Id;
        var manifest = runtime.Manifest!;
        var version = manifest.Version.ToString();
        var logger = _loggerFactory.CreateLogger("CrmEngine.Plugins." + id);

        // Load the entry assembly in the plugin's own load context.
        try
        {
            var (loader, entryType) = PluginAssemblyLoader.Load(runtime.Candidate.Folder, manifest.EntryAssembly, unloadable: false);
            runtime.Loader = loader;
            CrmPlugin? plugin = null;
            var created = await GuardedCall.RunAsync(id, $"creating {entryType.Name}",
                () => plugin = (CrmPlugin)Activator.CreateInstance(entryType)!, _options.CallTimeout, _logger, cancellationToken);
            if (!created.Succeeded)
            {
                runtime.Set(PluginState.Malfunctioned, created.Description);
                return;
            }

            runtime.Plugin = plugin;
        }
        catch (PluginLoadException ex)
        {
            runtime.Set(PluginState.NotSupported, ex.Message);
            return;
        }

        // Its own services: host-provided ones first, then whatever the plugin registers.
        var section = _configuration.GetSection("Plugins").GetSection(id);
        ICrmStore store;
        try
        {
            // Revocable: once the plugin is stopped or Malfunctioned, code it left running cannot write as plugin:<id>.
            runtime.Store = new RevocableCrmStore(_stores.ForActor("plugin:" + id, id), id);
            store = runtime.Store;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            runtime.Set(PluginState.Malfunctioned, $"the store could not be opened for it: {GuardedCall.Describe(ex)}");
            return;
        }

        var services = new ServiceCollection();
        services.AddSingleton(_loggerFactory);
        services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
        services.AddSingleton(logger);
        services.AddSingleton(_time);
        services.AddSingleton<IConfiguration>(section);
        services.AddSingleton(store);
        if (_scheduler is not null && _calendars is not null)
        {
            // IScheduler acting as the plugin (it sees and changes only its own jobs), and the business calendars.
            services.AddPluginScheduling(_scheduler, _calendars, id);
        }

        // Engine services offered to every plugin (the mail outbox ...), acting as the plugin where that matters.
        foreach (var contributor in _contributors)
        {
            contributor.AddServices(services, id);
        }

        services.AddOptions();
        var builder = new PluginBuilder(id, version, section, services);
        runtime.Builder = builder;
        var configured = await GuardedCall.RunAsync(id, "ConfigureServices", () => runtime.Plugin!.ConfigureServices(builder),
            _options.StartTimeout, _logger, cancellationToken);
        foreach (var declaration in builder.Entities)
        {
            // Also when ConfigureServices then failed: what was declared sensitive stays protected.
            _declared[declaration.Entity] = declaration;
            _declaredList = _declared.Values.ToList();
        }

        if (!configured.Succeeded)
        {
            runtime.Set(PluginState.Malfunctioned, configured.Description);
            RevokeStore(runtime);
            return;
        }

        ServiceProvider provider;
        try
        {
            provider = services.BuildServiceProvider(new ServiceProviderOptions { ValidateScopes = true });
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or AggregateException)
        {
            runtime.Set(PluginState.Malfunctioned, $"its services cannot be built: {GuardedCall.Describe(ex)}");
            RevokeStore(runtime);
            return;
        }

        runtime.Services = provider;
        foreach (var check in builder.OptionsChecks)
        {
            try
            {
                check(provider);
            }
            catch (OptionsValidationException ex)
            {
                runtime.Set(PluginState.NotSupported, $"invalid options in Plugins:{id}: {ex.Message.ReplaceLineEndings(" ")}");
                await DisposeServicesAsync(runtime);
                return;
            }
            catch (InvalidOperationException ex)
            {
                runtime.Set(PluginState.NotSupported, $"options in Plugins:{id} cannot be bound: {GuardedCall.Describe(ex)}");
                await DisposeServicesAsync(runtime);
                return;
            }
        }

        var context = new PluginContext(id, version, provider, store, section, logger);
        runtime.Context = context;

        // Install the first time, migrate when the version changed, then start.
        string? installedVersion;
        try
        {
            installedVersion = _installed.GetInstalledVersion(id);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            runtime.Set(PluginState.Malfunctioned, $"its installed version cannot be read: {GuardedCall.Describe(ex)}");
            await DisposeServicesAsync(runtime);
            return;
        }

        if (installedVersion != version)
        {
            var plugin = runtime.Plugin!;
            var step = installedVersion is null
                ? await GuardedCall.RunAsync(id, "InstallAsync", ct => plugin.InstallAsync(context, ct), _options.StartTimeout, _logger, cancellationToken)
                : await GuardedCall.RunAsync(id, $"MigrateAsync from {installedVersion}", ct => plugin.MigrateAsync(context, installedVersion, ct),
                    _options.StartTimeout, _logger, cancellationToken);
            if (!step.Succeeded)
            {
                runtime.Set(PluginState.Malfunctioned, step.Description);
                await DisposeServicesAsync(runtime);
                return;
            }

            try
            {
                _installed.SetInstalledVersion(id, version);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                runtime.Set(PluginState.Malfunctioned, $"its installed version cannot be recorded: {GuardedCall.Describe(ex)}");
                await DisposeServicesAsync(runtime);
                return;
            }
        }

        var started = await GuardedCall.RunAsync(id, "StartAsync", ct => runtime.Plugin!.StartAsync(context, ct),
            _options.StartTimeout, _logger, cancellationToken);
        if (!started.Succeeded)
        {
            runtime.Set(PluginState.Malfunctioned, started.Description);
            await DisposeServicesAsync(runtime);
            return;
        }

        runtime.Set(PluginState.Active, null);
        _breaker.Track(id);
        try
        {
            foreach (var spec in builder.Handlers)
            {
                runtime.Registrations.Add(_registry.Register(spec.Create(runtime)));
            }

            if (_scheduler is not null)
            {
                // Its job kinds run only while it accepts calls; the registration is disposed on stop and on
                // Malfunctioned (the kinds go away, their jobs wait in the store until it is active again).
                runtime.Registrations.Add(_scheduler.RegisterPluginJobKinds(id, provider, () => runtime.AcceptsCalls));
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The engine refused a handler (for example an unknown entity, or a job kind another owner has):
            // the plugin cannot run as declared.
            if (runtime.TryBeginStop(PluginState.Malfunctioned, $"its handlers cannot be registered: {GuardedCall.Describe(ex)}"))
            {
                await ShutDownAsync(runtime, cancellationToken);
            }

            return;
        }

    }

    /// <summary>Starts the workers of a plugin that is (still) active; nothing for one that stopped meanwhile.</summary>
    private void StartWorkers(PluginRuntime runtime)
    {
        if (runtime.Builder is not { Workers.Count: > 0 } builder)
        {
            return;
        }

        runtime.TryStartWorkers(token => builder.Workers
            .Select(workerType => Task.Run(() => RunWorkerAsync(runtime, workerType, token), CancellationToken.None))
            .ToList());
    }

    private async Task RunWorkerAsync(PluginRuntime runtime, Type workerType, CancellationToken stoppingToken)
    {
        var delay = _options.WorkerRestartDelay;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var scope = runtime.Services!.CreateAsyncScope();
                var worker = (IPluginWorker)scope.ServiceProvider.GetRequiredService(workerType);
                await Task.Run(() => worker.RunAsync(stoppingToken), CancellationToken.None);
                if (!stoppingToken.IsCancellationRequested)
                {
                    _logger.LogInformation("Plugin {PluginId}: worker {Worker} finished", runtime.Id, workerType.Name);
                }

                return;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                _logger.LogError(ex, "Plugin {PluginId}: worker {Worker} threw; restarting in {Delay}", runtime.Id, workerType.Name, delay);
                _breaker.RecordFailure(runtime.Id, $"worker {workerType.Name} threw {GuardedCall.Describe(ex)}");
            }

            try
            {
                await Task.Delay(delay, _time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, _options.WorkerRestartMaxDelay.Ticks));
        }
    }

    private void OnBreakerTripped(string pluginId, string reason)
    {
        var runtime = _runtimes.FirstOrDefault(r => string.Equals(r.Id, pluginId, StringComparison.OrdinalIgnoreCase));
        if (runtime is null || !runtime.TryBeginStop(PluginState.Malfunctioned, reason))
        {
            return;
        }

        _logger.LogError("Plugin {PluginId} {PluginVersion} Malfunctioned: {PluginReason}", runtime.Id, runtime.Manifest?.Version, reason);

        // Stopped off the caller's thread: the caller is the pipeline (or a worker) reporting the failure.
        var stop = Task.Run(() => ShutDownAsync(runtime, CancellationToken.None), CancellationToken.None);
        lock (_breakerStops)
        {
            _breakerStops.RemoveAll(t => t.IsCompleted);
            _breakerStops.Add(stop);
        }
    }

    /// <summary>Unregisters handlers, cancels workers, calls StopAsync (guarded) and disposes the plugin's services.</summary>
    private async Task ShutDownAsync(PluginRuntime runtime, CancellationToken cancellationToken)
    {
        foreach (var registration in runtime.Registrations)
        {
            try
            {
                registration.Dispose();
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                _logger.LogWarning(ex, "Plugin {PluginId}: a handler could not be unregistered", runtime.Id);
            }
        }

        runtime.Registrations.Clear();
        if (runtime.WorkerCancellation is { } workers)
        {
            await workers.CancelAsync();
            try
            {
                await Task.WhenAll(runtime.WorkerTasks).WaitAsync(_options.StopTimeout, CancellationToken.None);
            }
            catch (TimeoutException)
            {
                _logger.LogError("Plugin {PluginId}: workers did not stop within {Timeout} and were abandoned", runtime.Id, _options.StopTimeout);
            }
        }

        if (runtime.Plugin is { } plugin && runtime.Context is { } context)
        {
            await GuardedCall.RunAsync(runtime.Id, "StopAsync", ct => plugin.StopAsync(context, ct), _options.StopTimeout, _logger,
                cancellationToken);
        }

        _breaker.Untrack(runtime.Id);
        await DisposeServicesAsync(runtime);
    }

    /// <summary>Every path that ends a plugin's run (stop, Malfunctioned, a failed start) revokes its store.</summary>
    private static void RevokeStore(PluginRuntime runtime)
    {
        if (runtime.Store is { } store)
        {
            var info = runtime.ToInfo();
            store.Revoke(info.State == PluginState.Active ? "the plugin was stopped" : $"the plugin is {info.State}: {info.Reason}");
        }
    }

    /// <summary>The context handed to a plugin (tests: a plugin's captured store after it stopped).</summary>
    internal IPluginContext? ContextOf(string id) =>
        _runtimes.FirstOrDefault(r => string.Equals(r.Id, id, StringComparison.OrdinalIgnoreCase))?.Context;

    private async Task DisposeServicesAsync(PluginRuntime runtime)
    {
        RevokeStore(runtime);
        if (runtime.Services is { } provider)
        {
            runtime.Services = null;
            await GuardedCall.RunAsync(runtime.Id, "disposing its services", async _ => await provider.DisposeAsync(),
                _options.CallTimeout, _logger, CancellationToken.None);
        }
    }
}
