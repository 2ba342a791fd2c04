using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrmEngine.Api.Hosting;

/// <summary>The engine's service collection, captured by <c>AddCrmApi</c> and read when the API starts.</summary>
internal sealed class EngineServiceCollection(IServiceCollection services)
{
    public IServiceCollection Services { get; } = services;
}

/// <summary>
/// Makes the engine's services resolvable inside the API's own web application, so endpoint handlers (ours and the
/// modules of other concerns) can take them as parameters. Forwarded: every service type of a CrmEngine (or LiteDB)
/// assembly, <see cref="TimeProvider"/>, and <c>IOptions&lt;T&gt;</c>/<c>IOptionsMonitor&lt;T&gt;</c> of CrmEngine option
/// types. Singletons are resolved from the engine once, at API start, and registered as instances: the web
/// application's container never disposes what the engine owns. Scoped and transient services come from an engine
/// scope opened per request. Types the web application registers itself are left alone.
/// </summary>
internal static class EngineServiceBridge
{
    public static void Forward(IServiceCollection engineServices, IServiceProvider engine, IServiceCollection target, ILogger logger)
    {
        var own = target.Select(d => d.ServiceType).ToHashSet();
        target.AddScoped(_ => new EngineScope(engine.CreateAsyncScope()));

        foreach (var group in engineServices.Where(d => !d.IsKeyedService && Forwardable(d.ServiceType) && !own.Contains(d.ServiceType))
                     .GroupBy(d => d.ServiceType))
        {
            var type = group.Key;
            var descriptors = group.ToList();
            if (descriptors.TrueForAll(d => d.Lifetime == ServiceLifetime.Singleton))
            {
                IReadOnlyList<object?> instances;
                try
                {
                    instances = engine.GetServices(type).ToList();
                }
                catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or ObjectDisposedException)
                {
                    logger.LogWarning("API: engine service {ServiceType} cannot be resolved and is not available to endpoints: {Error}", type, ex.Message);
                    continue;
                }

                foreach (var instance in instances.OfType<object>())
                {
                    target.Add(ServiceDescriptor.Singleton(type, instance));
                }
            }
            else
            {
                for (var i = 0; i < descriptors.Count; i++)
                {
                    var index = i;
                    var lifetime = descriptors[i].Lifetime == ServiceLifetime.Singleton ? ServiceLifetime.Scoped : descriptors[i].Lifetime;
                    target.Add(new ServiceDescriptor(type, sp => sp.GetRequiredService<EngineScope>().Services.GetServices(type).ElementAt(index)!, lifetime));
                }
            }
        }

        // Options of the engine's concerns: the web application would otherwise build unconfigured defaults for them.
        var optionTypes = engineServices
            .Select(d => d.ServiceType)
            .Where(t => t.IsConstructedGenericType && IsOptionsSetup(t.GetGenericTypeDefinition()))
            .Select(t => t.GetGenericArguments()[0])
            .Where(IsEngineType)
            .Distinct()
            .ToList();
        foreach (var optionType in optionTypes)
        {
            var options = typeof(IOptions<>).MakeGenericType(optionType);
            var monitor = typeof(IOptionsMonitor<>).MakeGenericType(optionType);
            try
            {
                target.Add(ServiceDescriptor.Singleton(options, engine.GetRequiredService(options)));
                target.Add(ServiceDescriptor.Singleton(monitor, engine.GetRequiredService(monitor)));
            }
            catch (Exception ex) when (ex is InvalidOperationException or OptionsValidationException)
            {
                logger.LogWarning("API: engine options {OptionsType} are not available to endpoints: {Error}", optionType, ex.Message);
            }
        }
    }

    private static bool IsOptionsSetup(Type definition) =>
        definition == typeof(IConfigureOptions<>) || definition == typeof(IPostConfigureOptions<>) || definition == typeof(IValidateOptions<>);

    private static bool Forwardable(Type type) =>
        !type.ContainsGenericParameters && (type == typeof(TimeProvider) || IsEngineType(type));

    private static bool IsEngineType(Type type)
    {
        var assembly = type.Assembly.GetName().Name ?? "";
        return assembly.StartsWith("CrmEngine", StringComparison.Ordinal) || assembly.Equals("LiteDB", StringComparison.Ordinal);
    }

    /// <summary>An engine scope for one request; disposed with the request's scope.</summary>
    internal sealed class EngineScope(AsyncServiceScope scope) : IAsyncDisposable
    {
        public IServiceProvider Services => scope.ServiceProvider;

        public ValueTask DisposeAsync() => scope.DisposeAsync();
    }
}
