using System.Collections.Concurrent;
using CrmEngine.Abstractions.Scheduling;
using Microsoft.Extensions.DependencyInjection;

namespace CrmEngine.Scheduling.Jobs;

/// <summary>A registered job kind: who owns it (failures count against that owner) and how to run it.</summary>
public sealed record JobKindRegistration(string OwnerId, string Kind, JobKindOptions Options,
    Func<JobExecutionContext, CancellationToken, Task> Invoke);

/// <summary>Job kinds and their handlers. Kinds are unique across owners; disposing a registration removes it.</summary>
public sealed class JobHandlerRegistry
{
    private readonly ConcurrentDictionary<string, JobKindRegistration> _kinds = new(StringComparer.Ordinal);

    /// <summary>Raised after a kind is registered (the scheduler looks for due jobs of it at once).</summary>
    public event Action<string>? Registered;

    public IReadOnlyCollection<JobKindRegistration> All => _kinds.Values.ToArray();

    public JobKindRegistration? Find(string kind) => _kinds.TryGetValue(kind, out var r) ? r : null;

    /// <exception cref="InvalidOperationException">The kind is already registered (the message names its owner).</exception>
    public IDisposable Register(JobKindRegistration registration)
    {
        ArgumentNullException.ThrowIfNull(registration);
        ArgumentException.ThrowIfNullOrWhiteSpace(registration.Kind);
        if (!_kinds.TryAdd(registration.Kind, registration))
        {
            var existing = _kinds[registration.Kind];
            throw new InvalidOperationException(
                $"Job kind '{registration.Kind}' of '{registration.OwnerId}' is already registered by '{existing.OwnerId}'. Job kinds must be unique; prefix them with the plugin id.");
        }

        Registered?.Invoke(registration.Kind);
        return new Token(this, registration);
    }

    /// <summary>
    /// Registers every <see cref="JobHandlerDeclaration"/> found in <paramref name="services"/> under
    /// <paramref name="ownerId"/>: each run resolves the handler in a new scope of that provider. With
    /// <paramref name="acceptsCalls"/> false (plugin stopping or Malfunctioned) a run fails without calling it.
    /// Dispose the result to unregister them all (when the plugin stops or is marked Malfunctioned).
    /// </summary>
    public IDisposable RegisterDeclared(string ownerId, IServiceProvider services, Func<bool>? acceptsCalls = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(ownerId);
        ArgumentNullException.ThrowIfNull(services);
        var tokens = new List<IDisposable>();
        try
        {
            foreach (var declaration in services.GetServices<JobHandlerDeclaration>())
            {
                var handlerType = declaration.HandlerType;
                tokens.Add(Register(new JobKindRegistration(ownerId, declaration.Kind, declaration.Options, async (context, ct) =>
                {
                    if (acceptsCalls is not null && !acceptsCalls())
                    {
                        throw new InvalidOperationException($"'{ownerId}' is not active; its job kind '{declaration.Kind}' cannot run now.");
                    }

                    await using var scope = services.CreateAsyncScope();
                    var handler = (IJobHandler)scope.ServiceProvider.GetRequiredService(handlerType);
                    await handler.ExecuteAsync(context, ct).ConfigureAwait(false);
                })));
            }
        }
        catch
        {
            tokens.ForEach(t => t.Dispose());
            throw;
        }

        return new Many(tokens);
    }

    private sealed class Token(JobHandlerRegistry owner, JobKindRegistration registration) : IDisposable
    {
        public void Dispose() => owner._kinds.TryRemove(new KeyValuePair<string, JobKindRegistration>(registration.Kind, registration));
    }

    private sealed class Many(List<IDisposable> tokens) : IDisposable
    {
        public void Dispose() => tokens.ForEach(t => t.Dispose());
    }
}
